package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func entry(name, script string) string {
	return "  - id: " + name + "\n    binary_path: /bin/sh\n    args: [\"-c\", \"" + script + "\"]\n    start_seconds: 200ms\n"
}

// The edge-daemon with -opamp joins a fleet server: its agents' health
// is there, a configuration in its own format pushed from the server is
// applied (and written to its config file), and one whose new agent
// crash-loops is rolled back with FAILED, the running agents untouched.
func TestEdgeDaemonOnTheFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fleet.Server{}
	if err := srv.Start(ln); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())

	dir := t.TempDir()
	bin := filepath.Join(dir, "edge-daemon")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	loop := "while :; do sleep 1; done"
	first := "agents:\n" + entry("a", loop) + entry("b", loop)
	cfg := filepath.Join(dir, "daemon.yaml")
	os.WriteFile(cfg, []byte(first), 0o644)
	cmd := exec.Command(bin, "-config", cfg, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"),
		"-opamp", "ws://"+ln.Addr().String()+"/v1/opamp", "-shutdown-timeout", "10s")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // the banner; the pipe must be read
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
		}
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()

	wait := func(what string, ok func(fleet.Host) bool) fleet.Host {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hosts, err := srv.Wait(ctx, what, func(hosts []fleet.Host) bool { return len(hosts) == 1 && ok(hosts[0]) })
		if err != nil {
			t.Fatal(err)
		}
		return hosts[0]
	}
	healthy := func(names ...string) func(fleet.Host) bool {
		return func(h fleet.Host) bool { return h.AgentsHealthy(names...) }
	}
	h := wait("a and b healthy", healthy("a", "b"))
	started := h.Health.GetComponentHealthMap()["a"].StartTimeUnixNano
	done := func(hash []byte) func(fleet.Host) bool {
		return func(h fleet.Host) bool { return h.Settled(hash) }
	}

	second := first + entry("c", loop)
	hash, err := srv.Push(context.Background(), h.UID, []byte(second))
	if err != nil {
		t.Fatal(err)
	}
	h = wait("the config adding c done", done(hash))
	if h.Remote.Status != protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED {
		t.Fatalf("adding c: %v %s", h.Remote.Status, h.Remote.ErrorMessage)
	}
	wait("c healthy", healthy("a", "b", "c"))
	if b, _ := os.ReadFile(cfg); string(b) != second {
		t.Fatalf("the config file holds %q", b)
	}

	bad := second + entry("broken", "sleep 0.5; echo no config >&2; exit 1")
	if hash, err = srv.Push(context.Background(), h.UID, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	h = wait("the bad config done", done(hash))
	if h.Remote.Status != protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED || !strings.Contains(h.Remote.ErrorMessage, `agent "broken"`) {
		t.Fatalf("the bad config: %v %q", h.Remote.Status, h.Remote.ErrorMessage)
	}
	h = wait("rolled back", func(h fleet.Host) bool {
		_, broken := h.Health.GetComponentHealthMap()["broken"]
		return !broken && healthy("a", "b", "c")(h)
	})
	if now := h.Health.GetComponentHealthMap()["a"].StartTimeUnixNano; now != started {
		t.Errorf("a restarted by the rollback: started %d, was %d", now, started)
	}
	if b, _ := os.ReadFile(cfg); string(b) != second {
		t.Fatalf("after the rollback the config file holds %q", b)
	}
}

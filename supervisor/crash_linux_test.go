package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// containedHostEnv makes the test binary act as a host that runs a Group
// with cgroups, named by the variable, until it is killed.
const containedHostEnv = "TEND_TEST_CONTAINED_HOST"

// crashSpecs are the agents of the crashing host: an HTTP server on addr
// and a shell whose descendant leaves its session, writing its PID to dir.
func crashSpecs(agent, addr, dir string) []Spec {
	server := Spec{Name: "server", Path: agent, Args: []string{"-sd-serve", "-sd-own-port", addr},
		Ready: func(context.Context) error { _, err := get("http://" + addr); return err }}
	escaper := Spec{Name: "escaper", Path: "/bin/sh",
		Args: []string{"-c", `setsid sleep 1000 & echo $! > "$0"; exec sleep 1000`, filepath.Join(dir, "escaped")}}
	for _, s := range []*Spec{&server, &escaper} {
		s.StartSeconds = config.Duration(50 * time.Millisecond)
	}
	return []Spec{server, escaper}
}

func init() { testHosts[containedHostEnv] = runContainedHost }

// runContainedHost is the host the crash test kills: it writes its agents'
// PIDs to $dir/pids once they run, then waits to be killed.
func runContainedHost(name string) {
	dir, addr := os.Getenv("TEND_TEST_DIR"), os.Getenv("TEND_TEST_ADDR")
	g, err := NewGroup(GroupOptions{Containment: Containment{Name: name}})
	if err == nil {
		_, err = g.Apply(context.Background(), crashSpecs(os.Getenv("TEND_TEST_AGENT"), addr, dir))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "contained host:", err)
		os.Exit(3)
	}
	var pids []string
	for _, st := range g.List() {
		pids = append(pids, strconv.Itoa(st.PID))
	}
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(strings.Join(pids, "\n")+"\n"), 0o600); err != nil {
		os.Exit(4)
	}
	select {} // until the test kills this process
}

// The bug: a host that died left its agents running, holding their ports,
// and the next host's probes were answered by those leftovers. A Group
// now kills what a crashed instance of the same name left before it
// starts anything, so the port is free and the probe answered by its own
// agent.
func TestNextHostKillsWhatACrashedOneLeft(t *testing.T) {
	requireCgroups(t)
	name := "crash-test-" + strconv.Itoa(os.Getpid())
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), containedHostEnv+"="+name, "TEND_TEST_DIR="+dir,
		"TEND_TEST_ADDR="+addr, "TEND_TEST_AGENT="+agentPath)
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	left := readPIDs(t, filepath.Join(dir, "pids"), 2)
	left = append(left, readPIDs(t, filepath.Join(dir, "escaped"), 1)...)
	host.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it is ours
	host.Wait()                          //nolint:errcheck // killed on purpose
	for _, pid := range left {
		if !alive(pid) {
			t.Fatalf("agent process %d died with the host: nothing left to test", pid)
		}
	}
	if body, err := get("http://" + addr); err != nil || !strings.HasPrefix(body, "pid ") {
		t.Fatalf("the crashed host's server does not answer: %q %v", body, err)
	}

	g := newGroup(t, GroupOptions{Containment: Containment{Name: name}})
	for _, pid := range left {
		if alive(pid) {
			t.Errorf("leftover %d still running after the next host started", pid)
		}
	}
	if body, err := get("http://" + addr); err == nil {
		t.Fatalf("the port is still answered by a leftover: %q", body)
	}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), crashSpecs(agentPath, addr, dir)); err != nil {
		t.Fatal(err)
	}
	p, _ := g.Get("server")
	if body, err := get("http://" + addr); err != nil || strings.TrimSpace(body) != "pid "+strconv.Itoa(p.Status().PID) {
		t.Fatalf("probe answered %q (%v), want the new server, pid %d", body, err, p.Status().PID)
	}
}

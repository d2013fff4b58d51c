package opamp_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/tend-dev/tend/opamp"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"github.com/tend-dev/tend/supervisor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves a fleet server on a loopback port, stopped at the
// end of the test.
func startServer(t testing.TB, addr string) (*fleet.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &fleet.Server{}
	if err := s.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	return s, ln.Addr().String()
}

// host is a test host: a Group configured from a JSON list of Specs in
// its config file, connected by a Bridge.
type host struct {
	g    *supervisor.Group
	path string
	uid  string
	stop func()
}

func startHost(t testing.TB, url, initial string, containment supervisor.Containment, tune func(*opamp.Config)) *host {
	t.Helper()
	h := newHost(t, initial, containment)
	h.connect(t, url, tune)
	return h
}

// newHost starts a Group on initial, not yet connected.
func newHost(t testing.TB, initial string, containment supervisor.Containment) *host {
	t.Helper()
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: containment})
	if err != nil {
		t.Fatal(err)
	}
	h := &host{g: g, path: filepath.Join(t.TempDir(), "agents.json"), stop: func() {}}
	t.Cleanup(func() {
		h.stop()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		g.Close(ctx)
	})
	if err := os.WriteFile(h.path, []byte(initial), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := h.apply(ctxTimeout(t, 30*time.Second), []byte(initial)); err != nil {
		t.Fatal(err)
	}
	return h
}

// apply is the test host's own: decode, then the Group's Apply.
func (h *host) apply(ctx context.Context, data []byte) (supervisor.ApplyResult, error) {
	specs, err := fleet.DecodeAgents(data)
	if err != nil {
		return supervisor.ApplyResult{}, err
	}
	return h.g.Apply(ctx, specs)
}

// connect runs a Bridge for the host to the server at url.
func (h *host) connect(t testing.TB, url string, tune func(*opamp.Config)) {
	t.Helper()
	cfg := opamp.Config{ServerURL: "ws://" + url + "/v1/opamp", ConfigPath: h.path, Apply: h.apply,
		Validate:     func(data []byte) error { _, err := fleet.DecodeAgents(data); return err },
		VerifyWindow: 10 * time.Second, Settle: time.Second, Coalesce: 50 * time.Millisecond, ServiceVersion: "test"}
	if tb, ok := t.(*testing.T); ok {
		cfg.Logger = testr.NewWithOptions(tb, testr.Options{Verbosity: 1})
	}
	if tune != nil {
		tune(&cfg)
	}
	b, err := opamp.New(h.g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Run(runCtx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	h.uid = b.InstanceUID()
	h.stop = func() { stop(); <-done }
}

func sleeper(name string) string {
	return fmt.Sprintf(`{"name": %q, "binary_path": "/bin/sleep", "args": ["3600"], "start_seconds": "50ms"}`, name)
}

func agents(entries ...string) string { return "[" + strings.Join(entries, ", ") + "]" }

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// hostOf is the server's view of h.
func hostOf(hosts []fleet.Host, h *host) fleet.Host {
	for _, x := range hosts {
		if x.UID == h.uid {
			return x
		}
	}
	return fleet.Host{}
}

// agentHealth is the health the server has of the agent, nil if none.
func agentHealth(hosts []fleet.Host, h *host, agent string) *protobufs.ComponentHealth {
	return hostOf(hosts, h).Health.GetComponentHealthMap()[agent]
}

func healthy(h *host, names ...string) func([]fleet.Host) bool {
	return func(hosts []fleet.Host) bool { return hostOf(hosts, h).AgentsHealthy(names...) }
}

func pidOf(t testing.TB, g *supervisor.Group, name string) int {
	t.Helper()
	p, ok := g.Get(name)
	if !ok {
		t.Fatalf("no agent %q", name)
	}
	return p.Status().PID
}

// Each agent's health is on the server and follows a crash (unhealthy,
// with the exit, while it waits to restart) and the restart (healthy,
// a new start time); the server's restart command restarts every agent,
// its custom message one.
func TestHealthFollowsCrashAndRestart(t *testing.T) {
	srv, addr := startServer(t, "127.0.0.1:0")
	slow := `{"name": "slow", "binary_path": "/bin/sleep", "args": ["3600"], "start_seconds": "50ms", "restart": {"first_delay": "1s"}}`
	h := startHost(t, addr, agents(sleeper("fast"), slow), supervisor.Containment{Name: "opamp-health"}, nil)
	hosts, err := srv.Wait(ctxTimeout(t, 10*time.Second), "both agents healthy", healthy(h, "fast", "slow"))
	if err != nil {
		t.Fatal(err)
	}
	desc := hostOf(hosts, h).Description
	attrs := map[string]string{}
	for _, kv := range append(desc.GetIdentifyingAttributes(), desc.GetNonIdentifyingAttributes()...) {
		attrs[kv.Key] = kv.GetValue().GetStringValue()
	}
	if attrs["service.name"] != "tend" || attrs["service.version"] != "test" || attrs["service.instance.id"] != h.uid || attrs["host.name"] == "" || attrs["os.type"] != "linux" {
		t.Errorf("agent description %v", attrs)
	}
	started := agentHealth(hosts, h, "slow").StartTimeUnixNano

	syscall.Kill(pidOf(t, h.g, "slow"), syscall.SIGKILL)
	hosts, err = srv.Wait(ctxTimeout(t, 10*time.Second), "slow unhealthy after its crash", func(hosts []fleet.Host) bool {
		return agentHealth(hosts, h, "slow") != nil && !agentHealth(hosts, h, "slow").Healthy
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := agentHealth(hosts, h, "slow"); !strings.HasPrefix(c.Status, "backoff") || !strings.Contains(c.LastError, "killed by SIGKILL") || hostOf(hosts, h).Health.Healthy {
		t.Errorf("after the crash the server has %v (host healthy: %v)", c, hostOf(hosts, h).Health.Healthy)
	}
	hosts, err = srv.Wait(ctxTimeout(t, 10*time.Second), "slow healthy again", healthy(h, "slow"))
	if err != nil {
		t.Fatal(err)
	}
	if c := agentHealth(hosts, h, "slow"); c.StartTimeUnixNano <= started || c.LastError != "" {
		t.Errorf("after the restart: %v, started %d before", c, started)
	}

	// One agent, by the custom message.
	fast, slowPID := pidOf(t, h.g, "fast"), pidOf(t, h.g, "slow")
	if err := srv.Send(ctxTimeout(t, 5*time.Second), h.uid, &protobufs.CustomMessage{Capability: opamp.RestartCapability, Type: "restart", Data: []byte("fast")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "fast restarted", func() bool { return pidOf(t, h.g, "fast") != fast && pidOf(t, h.g, "fast") != 0 })
	if pidOf(t, h.g, "slow") != slowPID {
		t.Fatal("the custom restart of fast restarted slow too")
	}
	// Every agent, by the command.
	fast = pidOf(t, h.g, "fast")
	if err := srv.Restart(ctxTimeout(t, 5*time.Second), h.uid); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both restarted", func() bool {
		f, s := pidOf(t, h.g, "fast"), pidOf(t, h.g, "slow")
		return f != 0 && s != 0 && f != fast && s != slowPID
	})
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

// A remote configuration that adds an agent is validated, written,
// applied and reported APPLIED, with the file as the effective
// configuration; one that makes an agent crash-loop is rolled back: the
// agent is gone, the others kept their processes, the file is the old
// one, and FAILED says which agent and why; one that does not parse is
// FAILED at validation and writes nothing.
func TestRemoteConfigAppliedOrRolledBack(t *testing.T) {
	srv, addr := startServer(t, "127.0.0.1:0")
	initial := agents(sleeper("a"), sleeper("b"))
	h := startHost(t, addr, initial, supervisor.Containment{Name: "opamp-remote"}, nil)
	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "a and b healthy", healthy(h, "a", "b")); err != nil {
		t.Fatal(err)
	}
	statusOf := func(hash []byte) func([]fleet.Host) bool {
		return func(hosts []fleet.Host) bool { return hostOf(hosts, h).Settled(hash) }
	}

	added := agents(sleeper("a"), sleeper("b"), sleeper("c"))
	hash, err := srv.Push(ctxTimeout(t, 5*time.Second), h.uid, []byte(added))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := srv.Wait(ctxTimeout(t, 20*time.Second), "the config adding c done", statusOf(hash))
	if err != nil {
		t.Fatal(err)
	}
	if r := hostOf(hosts, h).Remote; r.Status != protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED {
		t.Fatalf("status %v: %s", r.Status, r.ErrorMessage)
	}
	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "c healthy and the effective config", func(hosts []fleet.Host) bool {
		return healthy(h, "c")(hosts) && string(hostOf(hosts, h).Effective) == added
	}); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{"a": pidOf(t, h.g, "a"), "b": pidOf(t, h.g, "b"), "c": pidOf(t, h.g, "c")}

	crashing := agents(sleeper("a"), sleeper("b"), sleeper("c"),
		`{"name": "bad", "binary_path": "/bin/sh", "args": ["-c", "sleep 0.3; echo cannot bind :9100 >&2; exit 2"], "start_seconds": "100ms"}`)
	hash, err = srv.Push(ctxTimeout(t, 5*time.Second), h.uid, []byte(crashing))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err = srv.Wait(ctxTimeout(t, 30*time.Second), "the crash-looping config done", statusOf(hash))
	if err != nil {
		t.Fatal(err)
	}
	r := hostOf(hosts, h).Remote
	if r.Status != protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED || !strings.Contains(r.ErrorMessage, `agent "bad"`) || !strings.Contains(r.ErrorMessage, "cannot bind :9100") {
		t.Fatalf("status %v, %q: want FAILED naming the agent and its last words", r.Status, r.ErrorMessage)
	}
	if _, ok := h.g.Get("bad"); ok {
		t.Fatal("the crash-looping agent is still in the Group after the rollback")
	}
	for name, pid := range pids {
		if now := pidOf(t, h.g, name); now != pid {
			t.Errorf("agent %s was touched by the rollback: PID %d, was %d", name, now, pid)
		}
	}
	if b, _ := os.ReadFile(h.path); string(b) != added {
		t.Fatalf("after the rollback the file holds %s", b)
	}
	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "the effective config rolled back", func(hosts []fleet.Host) bool {
		return string(hostOf(hosts, h).Effective) == added
	}); err != nil {
		t.Fatal(err)
	}

	hash, err = srv.Push(ctxTimeout(t, 5*time.Second), h.uid, []byte(`[{"name": "d", "binary_path": "/bin/sleep", "colour": "blue"}]`))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err = srv.Wait(ctxTimeout(t, 10*time.Second), "the bad config refused", statusOf(hash))
	if err != nil {
		t.Fatal(err)
	}
	if r := hostOf(hosts, h).Remote; r.Status != protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED || !strings.Contains(r.ErrorMessage, "validate") || !strings.Contains(r.ErrorMessage, "colour") {
		t.Fatalf("status %v, %q: want FAILED at validation, naming the key", r.Status, r.ErrorMessage)
	}
	if b, _ := os.ReadFile(h.path); string(b) != added {
		t.Fatalf("a config that does not validate was written: %s", b)
	}
}

// A configuration that arrives while one is being applied supersedes it:
// the first is rolled back, the second applied and reported; the first
// gets no status of its own.
func TestNewerConfigSupersedesOneUnderWay(t *testing.T) {
	srv, addr := startServer(t, "127.0.0.1:0")
	h := startHost(t, addr, agents(sleeper("a")), supervisor.Containment{Name: "opamp-supersede"}, nil)
	if _, err := srv.Wait(ctxTimeout(t, 10*time.Second), "a healthy", healthy(h, "a")); err != nil {
		t.Fatal(err)
	}
	slowToStart := agents(sleeper("a"), `{"name": "slow", "binary_path": "/bin/sleep", "args": ["3600"], "start_seconds": "3s"}`)
	if _, err := srv.Push(ctxTimeout(t, 5*time.Second), h.uid, []byte(slowToStart)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slow starting", func() bool { p, ok := h.g.Get("slow"); return ok && p.Status().State == supervisor.Starting })
	second := agents(sleeper("a"), sleeper("z"))
	hash, err := srv.Push(ctxTimeout(t, 5*time.Second), h.uid, []byte(second))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := srv.Wait(ctxTimeout(t, 20*time.Second), "the second config applied", func(hosts []fleet.Host) bool {
		r := hostOf(hosts, h).Remote
		return bytes.Equal(r.GetLastRemoteConfigHash(), hash) && r.GetStatus() == protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.g.Get("slow"); ok {
		t.Error("the superseded config's agent is still there")
	}
	if b, _ := os.ReadFile(h.path); string(b) != second {
		t.Errorf("the file holds %s", b)
	}
	_ = hosts
}

// The server goes away and comes back on the same address: the bridge
// reconnects by itself and the new server has the whole state (every
// agent's health as it is now, the effective configuration) in a few
// messages, however much happened while it was away.
func TestReconnectResendsState(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	first, _ := startServer(t, addr)
	h := startHost(t, addr, agents(sleeper("a"), sleeper("b")), supervisor.Containment{Name: "opamp-reconnect"}, nil)
	if _, err := first.Wait(ctxTimeout(t, 10*time.Second), "a and b healthy", healthy(h, "a", "b")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	first.Stop(ctx)
	cancel()
	time.Sleep(500 * time.Millisecond) // the bridge notices and backs off
	// Offline, a has 20 restarts (80 transitions): none of it queues.
	for range 20 {
		if err := h.g.Restart(ctxTimeout(t, 10*time.Second), "a"); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := h.g.Get("a")
	last := uint64(p.Status().StartedAt.UnixNano())
	second, _ := startServer(t, addr)
	hosts, err := second.Wait(ctxTimeout(t, 30*time.Second), "the host back with its state", func(hosts []fleet.Host) bool {
		return healthy(h, "a", "b")(hosts) && len(hostOf(hosts, h).Effective) > 0 && hostOf(hosts, h).Description != nil &&
			agentHealth(hosts, h, "a").StartTimeUnixNano == last
	})
	if err != nil {
		x := hostOf(hosts, h)
		t.Fatalf("%v: the new server has health %v, effective %q, description %v", err, x.Health, x.Effective, x.Description)
	}
	if string(hostOf(hosts, h).Effective) != agents(sleeper("a"), sleeper("b")) {
		t.Errorf("effective config on the new server: %s", hostOf(hosts, h).Effective)
	}
	t.Logf("messages after reconnecting: %d", hostOf(hosts, h).Messages)
	if n := hostOf(hosts, h).Messages; n > 4 {
		t.Errorf("the host sent %d messages after reconnecting: what happened offline queued", n)
	}
}

// Bad settings are refused, naming the key.
func TestNewRefusesBadSettings(t *testing.T) {
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	for _, c := range []struct {
		cfg  opamp.Config
		want string
	}{
		{opamp.Config{}, `"server_url"`},
		{opamp.Config{ServerURL: "ftp://x/v1/opamp"}, "want a ws, wss, http or https URL"},
		{opamp.Config{ServerURL: "ws:///v1/opamp"}, "names no host"},
		{opamp.Config{ServerURL: "ws://x/v1/opamp", ConfigPath: "/etc/x.yaml"}, `"config_path"`},
		{opamp.Config{ServerURL: "ws://x/v1/opamp", Settle: -time.Second}, `"settle"`},
	} {
		if _, err := opamp.New(g, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error with %s", c.cfg, err, c.want)
		}
	}
}

package health

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startServer(t *testing.T, opts ServerOptions) *HeartbeatServer {
	t.Helper()
	s, err := NewHeartbeatServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if _, err := os.Stat(opts.Path); !os.IsNotExist(err) {
			t.Errorf("socket file left after Serve ended: %v", err)
		}
	})
	return s
}

func socketPath(t *testing.T) string {
	// Unix socket paths are limited to 108 bytes: keep it short.
	dir, err := os.MkdirTemp("", "hb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "a.sock")
}

func dial(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A real agent process reports over the socket and keeps its heartbeat
// fresh; when it stops reporting, the heartbeat goes stale.
func TestHeartbeatServerWithRealAgent(t *testing.T) {
	path := socketPath(t)
	hb := NewHeartbeat(300 * time.Millisecond)
	s := startServer(t, ServerOptions{Path: path, AgentID: "filebeat-logs", Heartbeat: hb})
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want 0600", info.Mode().Perm())
	}
	agent := startAgent(t, "-heartbeat-socket", path, "-heartbeat-id", "filebeat-logs",
		"-heartbeat-every", "50ms", "-heartbeat-stop-after", "500ms")
	waitFor(t, "a heartbeat", func() bool { _, ok := s.Last(); return ok })
	m, _ := s.Last()
	if m.PID != agent.Process.Pid || m.Status != "running" || m.Memory != 1048576 || m.Timestamp.IsZero() {
		t.Fatalf("last message %+v", m)
	}
	if err := hb.Check(context.Background()); err != nil {
		t.Fatalf("while beating: %v", err)
	}
	time.Sleep(900 * time.Millisecond) // stopped at 500ms; stale 300ms later
	if err := hb.Check(context.Background()); err == nil {
		t.Fatal("heartbeat still fresh after the agent stopped beating")
	}
}

// Garbage on one connection never stops the server serving the others.
func TestHeartbeatServerSurvivesGarbage(t *testing.T) {
	path := socketPath(t)
	hb := NewHeartbeat(time.Hour)
	s := startServer(t, ServerOptions{Path: path, AgentID: "a", Heartbeat: hb, MaxLineBytes: 256,
		IdleTimeout: 200 * time.Millisecond, MaxConns: 8})
	good := `{"agent_id":"a","status":"running"}` + "\n"

	cases := map[string]string{
		"too long":    strings.Repeat("x", 1000) + "\n",
		"bad json":    "{not json\n",
		"wrong agent": `{"agent_id":"b","status":"running"}` + "\n",
		"bad status":  `{"agent_id":"a","status":"sleepy"}` + "\n",
	}
	for name, garbage := range cases {
		c := dial(t, path)
		fmt.Fprint(c, garbage)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: the connection was not dropped", name)
		}
	}
	silent := dial(t, path)
	silent.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("silent client: %v, want it dropped by the server before our deadline", err)
	}

	// Flood past MaxConns; the server refuses the excess and keeps serving.
	var flood []net.Conn
	for range 50 {
		if c, err := net.Dial("unix", path); err == nil {
			flood = append(flood, c)
		}
	}
	waitFor(t, "refused connections", func() bool { return s.Stats().RefusedConns > 0 })
	for _, c := range flood {
		c.Close()
	}
	dialled := int64(len(cases) + 1 + len(flood)) // garbage, silent, flood
	waitFor(t, "the flood to drain", func() bool {
		st := s.Stats()
		s.mu.Lock()
		defer s.mu.Unlock()
		return st.AcceptedConns+st.RefusedConns == dialled && len(s.conns) == 0
	})
	c := dial(t, path)
	fmt.Fprint(c, good, good)
	waitFor(t, "good lines", func() bool { return s.Stats().Lines == 2 })
	st := s.Stats()
	if st.TooLong != 1 || st.BadLines != 2 || st.WrongAgent != 1 || st.Idle < 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHeartbeatServerReplacesStaleSocket(t *testing.T) {
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if _, err := NewHeartbeatServer(ServerOptions{Path: path, Heartbeat: NewHeartbeat(0)}); err == nil {
		t.Fatal("took over a socket a live server listens on")
	}
	ln.Close() // what a crashed host leaves: the file, no listener
	startServer(t, ServerOptions{Path: path, Heartbeat: NewHeartbeat(0)})
	dial(t, path)
}

func FuzzParseMessage(f *testing.F) {
	f.Add([]byte(`{"agent_id":"a","pid":1,"status":"running","cpu":1.5,"memory":10,"timestamp":"2026-11-29T05:00:00Z"}`))
	f.Add([]byte(`{"agent_id":"a","status":"error","timestamp":1764392400}`))
	f.Add([]byte(`{"agent_id":"","status":"running"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := ParseMessage(line)
		if err != nil {
			return
		}
		if m.AgentID == "" || m.PID < 0 || m.CPU < 0 || (m.Status != "running" && m.Status != "stopping" && m.Status != "error") {
			t.Fatalf("accepted an invalid message %+v from %q", m, line)
		}
	})
}

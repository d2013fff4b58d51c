package edgedaemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unixClient talks HTTP to the control socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}}}
}

// call sends a request and returns its status code and body.
func call(t *testing.T, c *http.Client, method, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The control API lets no one in: over TCP, reads are open to loopback
// names, and a change without the token, with a wrong one, or a read
// naming another host is refused with 401; the control socket serves
// this user without a token and refuses another user's process with
// 403 (or the kernel refuses the connection, the socket being 0600);
// each refusal is logged.
func TestControlAPILetsNoOneIn(t *testing.T) {
	dir, agent := daemonTestDir(t)
	cfg := filepath.Join(dir, "daemon.yaml")
	os.WriteFile(cfg, []byte("agents:\n"+agentEntry(agent, "a", dir)), 0o644)
	public, err := os.MkdirTemp("", "edge-control") // a directory anyone may enter, for the socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(public) })
	os.Chmod(public, 0o755)
	socket := filepath.Join(public, "control.sock")
	d := startDaemonWith(t, "-config", cfg, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-control-socket", socket)
	d.waitAgents(t, "a running", allRunning("a"))

	var fi os.FileInfo
	fi, err = os.Stat(filepath.Join(d.dataDir, tokenFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if tok := d.token(t); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Fatalf("token %q, want 64 hex digits", tok)
	}
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("control socket: %v, mode %v; want a socket, 0600", err, fi.Mode())
	}

	tcp := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer tcp.CloseIdleConnections()
	base := "http://" + d.addr
	for _, c := range []struct {
		what, method, path string
		header             []string
		want               int
	}{
		{"a read", "GET", "/agents", nil, 200},
		{"the page", "GET", "/", nil, 200},
		{"metrics", "GET", "/metrics", nil, 200},
		{"a read as localhost", "GET", "/agents", []string{"Host", "localhost:1"}, 200},
		{"a read naming another host", "GET", "/agents", []string{"Host", "attacker.example:80"}, 401},
		{"a change without a token", "POST", "/agents/a/restart", nil, 401},
		{"a change with a wrong token", "POST", "/agents/a/stop", []string{"Authorization", "Bearer " + strings.Repeat("0", 64)}, 401},
		{"a change with a token of another scheme", "POST", "/agents/a/stop", []string{"Authorization", "Basic " + d.token(t)}, 401},
		{"an upgrade without a token", "POST", "/upgrade", nil, 401},
		{"a read naming another host, with the token", "GET", "/agents", []string{"Host", "edge.example", "Authorization", "Bearer " + d.token(t)}, 200},
		{"a change with the token", "POST", "/agents/a/restart", []string{"Authorization", "Bearer " + d.token(t)}, 200},
	} {
		if code, body := call(t, tcp, c.method, base+c.path, c.header...); code != c.want {
			t.Errorf("%s: %s %s = %d %s, want %d", c.what, c.method, c.path, code, body, c.want)
		}
	}
	if a := d.agents(t)["a"]; a.State != "running" || a.Restarts != 0 {
		t.Fatalf("after the refused changes a is %+v: want it running, untouched but for the one restart asked with the token", a)
	}

	// This user, over the socket, without a token.
	self := unixClient(socket)
	defer self.CloseIdleConnections()
	if code, body := call(t, self, "POST", "http://localhost/agents/a/restart"); code != 200 {
		t.Fatalf("restart over the control socket: %d %s", code, body)
	}

	// Another user's process: the kernel refuses it the 0600 socket; with
	// the socket opened to all (a mistaken chmod), the daemon refuses it.
	if os.Geteuid() != 0 {
		t.Log("not root: cannot run a process as another user; the peer check is not tried")
	} else {
		if out := asNobody(t, socket); !strings.Contains(out, "permission denied") {
			t.Errorf("another user on the 0600 socket: %q, want the connection refused", out)
		}
		os.Chmod(socket, 0o666)
		if out := asNobody(t, socket); !strings.HasPrefix(out, "403") {
			t.Errorf("another user on a socket open to all: %q, want 403", out)
		}
	}

	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(d.log.String()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the daemon's log never showed %s", what)
			}
		}
	}
	waitFor("5 refusals with 401", func(log string) bool {
		return strings.Count(log, "API request refused") >= 5 && strings.Count(log, "status=401") >= 5
	})
	if os.Geteuid() == 0 {
		waitFor("the refusal of uid 65534", func(log string) bool {
			return strings.Contains(log, "status=403") && strings.Contains(log, "peerUID=65534")
		})
	}
}

// asNobody runs this test binary as uid 65534 to POST a restart over the
// control socket, and returns "CODE body" or the error.
func asNobody(t *testing.T, socket string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "edge-peer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	bin := filepath.Join(dir, "peer.test")
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run", "^TestPeerHelper$")
	cmd.Env = append(os.Environ(), "EDGE_PEER_SOCKET="+socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as nobody: %v\n%s", err, out)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}

// TestPeerHelper is the other user's process of TestControlAPILetsNoOneIn;
// it does nothing unless that test runs it.
func TestPeerHelper(t *testing.T) {
	socket := os.Getenv("EDGE_PEER_SOCKET")
	if socket == "" {
		t.Skip("run by TestControlAPILetsNoOneIn as another user")
	}
	c := unixClient(socket)
	defer c.CloseIdleConnections()
	resp, err := c.Post("http://localhost/agents/a/restart", "", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, strings.TrimSpace(string(body)))
}

// A token file others may read is refused at start, naming it and its
// mode; nothing is started.
func TestTokenFileReadableByOthersRefused(t *testing.T) {
	dir, agent := daemonTestDir(t)
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	os.WriteFile(filepath.Join(data, tokenFileName), []byte(strings.Repeat("ab", 32)+"\n"), 0o644)
	cfg := filepath.Join(dir, "daemon.yaml")
	os.WriteFile(cfg, []byte("agents:\n"+agentEntry(agent, "a", dir, "-pidfile", filepath.Join(dir, "a.pid"))), 0o644)
	bin := filepath.Join(dir, "edge-daemon")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-config", cfg, "-listen", "127.0.0.1:0", "-data", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), filepath.Join(data, tokenFileName)) || !strings.Contains(string(out), "mode 0644") {
		t.Fatalf("daemon with a 0644 token file: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a.pid")); err == nil {
		var pid int
		fmt.Sscan(string(b), &pid)
		if alive(pid) {
			t.Fatalf("agent a (PID %d) still runs after the daemon refused to start", pid)
		}
	}
}

// -log-level filters the daemon's log; each transition is one line at
// its level (a crash a warning, a requested stop info) with the agent,
// the reason and the exit; a stopped agent's health checker logs nothing
// tick after tick.
func TestLogLevelsAndTransitions(t *testing.T) {
	dir, agent := daemonTestDir(t)
	cfg := filepath.Join(dir, "daemon.yaml")
	os.WriteFile(cfg, []byte("agent_defaults:\n  health_check:\n    interval: 50ms\n    timeout: 40ms\n"+
		"agents:\n"+agentEntry(agent, "a", dir)), 0o644)

	warn := startDaemonWith(t, "-config", cfg, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "warn"), "-log-level", "warn")
	first := warn.waitAgents(t, "a running", allRunning("a"))
	syscall.Kill(first["a"].PID, syscall.SIGKILL)
	warn.waitAgents(t, "a running again", func(a map[string]agentJSON) bool { return a["a"].State == "running" && a["a"].PID != first["a"].PID })
	crash := `level=WARN msg="agent backoff" agent=a from=running to=backoff reason=exited exit="killed by SIGKILL"`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(warn.log.String(), crash); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log:\n%s", crash, warn.log.String())
		}
	}
	if n := strings.Count(warn.log.String(), `msg="agent backoff" agent=a`); n != 1 {
		t.Errorf("the crash logged %d times", n)
	}
	if strings.Contains(warn.log.String(), "level=INFO") {
		t.Errorf("-log-level warn let info lines through:\n%s", warn.log.String())
	}
	warn.cmd.Process.Signal(syscall.SIGTERM) // one instance of the host at a time
	warn.cmd.Wait()

	debug := startDaemonWith(t, "-config", cfg, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "debug"), "-log-level", "debug",
		"-control-socket", filepath.Join(dir, "debug.sock"))
	debug.waitAgents(t, "a running", allRunning("a"))
	resp := debug.post(t, "/agents/a/stop", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stop: %s", resp.Status)
	}
	stopped := `level=INFO msg="agent stopped" agent=a from=stopping to=stopped reason=stopped`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(debug.log.String(), stopped); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the log", stopped)
		}
	}
	at := len(debug.log.String())
	time.Sleep(time.Second) // 20 probe ticks
	if after := debug.log.String()[at:]; strings.Contains(after, "agent=a") {
		t.Errorf("a stopped agent's lines go on:\n%s", after)
	}
}

package edgedaemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
	"github.com/tend-dev/tend/internal/testagent"
	"github.com/tend-dev/tend/supervisor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runningDaemon is the edge-daemon started as a process by a test.
type runningDaemon struct {
	cmd     *exec.Cmd
	addr    string
	banner  string // what it printed up to "stop with Ctrl-C"
	dataDir string
	log     *testagent.Output // what it wrote to stderr (its log), also copied to the test's stderr
}

// token is the daemon's API token, from its data directory.
func (d *runningDaemon) token(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir, tokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// post sends a POST with the daemon's token.
func (d *runningDaemon) post(t testing.TB, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+d.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp
}

func startDaemon(t testing.TB, configPath, dataDir string) *runningDaemon {
	t.Helper()
	return startDaemonWith(t, "-config", configPath, "-listen", "127.0.0.1:0", "-data", dataDir)
}

// startDaemonWith builds the daemon and runs it with args, returning once
// it has printed the address of its status API.
func startDaemonWith(t testing.TB, args ...string) *runningDaemon {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "edge-daemon")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := ""
	if i := slices.Index(args, "-data"); i >= 0 {
		dataDir = args[i+1]
	}
	cmd := exec.Command(bin, append(args, "-shutdown-timeout", "10s")...)
	stdout, _ := cmd.StdoutPipe()
	stderr := &testagent.Output{}
	cmd.Stderr = io.MultiWriter(os.Stderr, stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// An orderly shutdown, so that the daemon's agents go with it
		// (after a SIGKILL the next daemon on the same data directory
		// would kill them).
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	started := make(chan *runningDaemon, 1)
	go func() {
		var addr, banner string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			banner += sc.Text() + "\n"
			if rest, ok := strings.CutPrefix(sc.Text(), "status:  curl http://"); ok {
				addr = strings.TrimSuffix(rest, "/agents")
			}
			if strings.HasPrefix(sc.Text(), "stop with Ctrl-C") && addr != "" {
				select { // a binary it upgrades to prints its banner again
				case started <- &runningDaemon{cmd: cmd, addr: addr, banner: banner, dataDir: dataDir, log: stderr}:
				default:
				}
			}
		}
	}()
	select {
	case d := <-started:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon never printed its banner with the status address")
		return nil
	}
}

type agentJSON struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
}

func (d *runningDaemon) agents(t testing.TB) map[string]agentJSON {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + "/agents")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []agentJSON
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := map[string]agentJSON{}
	for _, a := range list {
		out[a.Name] = a
	}
	return out
}

// waitAgents polls the status API until ok accepts it.
func (d *runningDaemon) waitAgents(t testing.TB, what string, ok func(map[string]agentJSON) bool) map[string]agentJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a := d.agents(t)
		if ok(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s; last %+v", what, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func agentEntry(agent, name, workDir string, args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf("  - id: %s\n    binary_path: %s\n    work_dir: %s\n    start_seconds: 100ms\n    args: [%s]\n",
		name, agent, filepath.Join(workDir, name), strings.Join(quoted, ", "))
}

func allRunning(names ...string) func(map[string]agentJSON) bool {
	return func(a map[string]agentJSON) bool {
		if len(a) != len(names) {
			return false
		}
		for _, n := range names {
			if a[n].State != "running" || a[n].PID == 0 {
				return false
			}
		}
		return true
	}
}

func TestEdgeDaemonEndToEnd(t *testing.T) {
	dir, agent := daemonTestDir(t)
	cfg := filepath.Join(dir, "daemon.yaml")
	write := func(body string) {
		tmp := cfg + ".tmp"
		os.WriteFile(tmp, []byte(body), 0o644)
		os.Rename(tmp, cfg)
	}
	write("agents:\n" + agentEntry(agent, "a", dir) + agentEntry(agent, "b", dir, "-lines", "3", "-text", "hello") + agentEntry(agent, "c", dir))
	d := startDaemon(t, cfg, filepath.Join(dir, "data"))
	first := d.waitAgents(t, "a, b and c running", allRunning("a", "b", "c"))
	seen := []int{first["a"].PID, first["b"].PID, first["c"].PID}

	// Change b, drop c, add d: only b and d get new children.
	write("agents:\n" + agentEntry(agent, "a", dir) + agentEntry(agent, "b", dir, "-lines", "3", "-text", "changed") + agentEntry(agent, "d", dir))
	second := d.waitAgents(t, "the new agent set", func(a map[string]agentJSON) bool {
		return allRunning("a", "b", "d")(a) && a["b"].PID != first["b"].PID
	})
	if second["a"].PID != first["a"].PID {
		t.Error("an unchanged agent was restarted by a config reload")
	}
	if alive(first["c"].PID) || alive(first["b"].PID) {
		t.Error("a removed or replaced agent's process is still alive")
	}
	seen = append(seen, second["b"].PID, second["d"].PID)

	// A broken config is rejected and nothing running is touched.
	write("agents:\n  - id: a\n    binary_path: [oops\n")
	time.Sleep(time.Second)
	if now := d.agents(t); now["a"].PID != second["a"].PID || now["b"].PID != second["b"].PID || len(now) != 3 {
		t.Fatalf("a broken config disturbed the agents: %+v", now)
	}

	resp, err := http.Get("http://" + d.addr + "/agents/b/logs?n=3")
	if err != nil {
		t.Fatal(err)
	}
	var logs struct{ Lines []string }
	json.NewDecoder(resp.Body).Decode(&logs)
	resp.Body.Close()
	if len(logs.Lines) != 3 || !strings.HasSuffix(logs.Lines[2], "stdout: changed 3") {
		t.Fatalf("log tail %q", logs.Lines)
	}

	resp = d.post(t, "/agents/a/restart", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("restart via API: %v", resp.Status)
	}
	resp.Body.Close()
	third := d.waitAgents(t, "a restarted", func(a map[string]agentJSON) bool {
		return allRunning("a", "b", "d")(a) && a["a"].PID != second["a"].PID
	})
	seen = append(seen, third["a"].PID)

	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v", err)
	}
	for _, pid := range seen {
		if alive(pid) {
			t.Errorf("agent process %d survived the daemon's shutdown", pid)
		}
	}
}

// daemonTestDir skips in -short mode (the daemon is built and run) and
// returns a directory for the test with the test agent built in it.
func daemonTestDir(t *testing.T) (dir, agent string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir = t.TempDir()
	agent, err := testagent.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, agent
}

func alive(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && st.Live()
}

// An agent that never becomes ready holds up nothing: the daemon prints
// its banner and answers its status API while that agent is still
// starting, and the other agent runs.
func TestEdgeDaemonDoesNotWaitForASlowAgent(t *testing.T) {
	dir, agent := daemonTestDir(t)
	cfgPath := filepath.Join(dir, "agents.yaml")
	cfg := "agents:\n" + agentEntry(agent, "good", dir) +
		fmt.Sprintf("  - id: never-ready\n    binary_path: %s\n    work_dir: %s\n    notify_ready: true\n    start_timeout: 1h\n", agent, filepath.Join(dir, "never-ready"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfgPath, filepath.Join(dir, "data"))
	a := d.waitAgents(t, "good running", func(a map[string]agentJSON) bool { return a["good"].State == "running" })
	if a["never-ready"].State != "starting" {
		t.Fatalf("never-ready is %q, want still starting", a["never-ready"].State)
	}
}

// The daemon survives every file operation on every file it watches: its
// own config and an agent's config_file are removed, truncated, replaced
// by a directory and made unreadable in turn, and the agent keeps
// running, the status API answering throughout.
func TestEdgeDaemonSurvivesFileOperations(t *testing.T) {
	dir, agent := daemonTestDir(t)
	agentCfg := filepath.Join(dir, "agent.conf")
	os.WriteFile(agentCfg, []byte("valid: true\n"), 0o644)
	cfgPath := filepath.Join(dir, "daemon.yaml")
	cfg := "agents:\n" + agentEntry(agent, "a", dir, "-hup") + "    config_file: " + agentCfg + "\n"
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	d := startDaemon(t, cfgPath, filepath.Join(dir, "data"))
	pid := d.waitAgents(t, "a running", allRunning("a"))["a"].PID
	for _, path := range []string{agentCfg, cfgPath} {
		for _, op := range []struct {
			name string
			do   func() error
		}{
			{"remove", func() error { return os.Remove(path) }},
			{"recreate", func() error { return os.WriteFile(path, []byte("valid: true\n"), 0o644) }},
			{"truncate", func() error { return os.Truncate(path, 0) }},
			{"chmod 000", func() error { return os.Chmod(path, 0) }},
			{"chmod back", func() error { return os.Chmod(path, 0o644) }},
			{"replace with a directory", func() error { os.Remove(path); return os.Mkdir(path, 0o755) }},
			{"restore", func() error { os.Remove(path); return os.WriteFile(path, []byte("valid: true\n"), 0o644) }},
		} {
			if err := op.do(); err != nil {
				t.Fatalf("%s %s: %v", op.name, path, err)
			}
			time.Sleep(300 * time.Millisecond) // past the watcher's debounce: the kernel's events, not tend's timing
			if d.cmd.ProcessState != nil {
				t.Fatalf("the daemon died after %s of %s", op.name, path)
			}
			if a := d.agents(t); a["a"].State != "running" {
				t.Fatalf("after %s of %s: %+v", op.name, path, a)
			}
		}
	}
	if now := d.agents(t)["a"].PID; now != pid {
		t.Fatalf("the agent was restarted (pid %d, was %d): edits of its file are reloads", now, pid)
	}
}

// The shipped exporters.yaml runs as the README says, with no hand steps:
// both exporters from Debian's packages come up and are served.
func TestShippedExportersConfigRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	requireExporters(t)
	d := startDaemon(t, filepath.Join("..", "configs", "exporters.yaml"), t.TempDir())
	d.waitAgents(t, "both exporters running", allRunning("node-exporter", "blackbox-exporter"))
	for _, url := range []string{"http://127.0.0.1:9100/metrics", "http://127.0.0.1:9115/-/healthy"} {
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %v %v", url, err, resp)
		}
		resp.Body.Close()
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if err := d.cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
}

// The bug: after the daemon crashed, both exporters kept 127.0.0.1:9100
// and :9115, and the next daemon's probes were answered by those
// leftovers while its own children crash-looped on "address already in
// use". The next daemon on the same data directory now kills them before
// it starts its agents, and its own exporters serve.
func TestExportersLeftByACrashedDaemonAreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon twice")
	}
	requireExporters(t)
	data := t.TempDir()
	first := startDaemon(t, filepath.Join("..", "configs", "exporters.yaml"), data)
	before := first.waitAgents(t, "both exporters running", allRunning("node-exporter", "blackbox-exporter"))
	first.cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // a crash, on purpose
	first.cmd.Wait()                          //nolint:errcheck // killed
	for name, a := range before {
		if !alive(a.PID) {
			t.Fatalf("%s (pid %d) died with the daemon: nothing left to test", name, a.PID)
		}
	}
	second := startDaemon(t, filepath.Join("..", "configs", "exporters.yaml"), data)
	after := second.waitAgents(t, "both exporters running again", allRunning("node-exporter", "blackbox-exporter"))
	for name, a := range before {
		if alive(a.PID) {
			t.Errorf("%s left by the crashed daemon (pid %d) still runs", name, a.PID)
		}
		if after[name].PID == a.PID || after[name].Restarts != 0 {
			t.Errorf("%s: %+v after the crash, want a new child that did not crash-loop", name, after[name])
		}
	}
	for _, url := range []string{"http://127.0.0.1:9100/metrics", "http://127.0.0.1:9115/-/healthy"} {
		if _, err := get(url); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
}

// requireExporters skips unless Debian's exporters are installed and
// their ports are free.
func requireExporters(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"/usr/bin/prometheus-node-exporter", "/usr/bin/prometheus-blackbox-exporter", "/etc/prometheus/blackbox.yml"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s absent (Debian packages prometheus-node-exporter, prometheus-blackbox-exporter)", bin)
		}
	}
	for _, addr := range []string{"127.0.0.1:9100", "127.0.0.1:9115"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("%s is taken here: %v", addr, err)
		}
		l.Close()
	}
}

// agent_defaults.heartbeat_timeout does not give a heartbeat probe to an
// agent that has no heartbeat socket and so can never beat: its health
// report has no heartbeat probe, so it cannot be restarted for silence.
func TestDefaultHeartbeatTimeoutSparesAgentsWithoutSocket(t *testing.T) {
	dir, agent := daemonTestDir(t)
	cfgPath := filepath.Join(dir, "daemon.yaml")
	cfg := "agent_defaults:\n  health_check:\n    interval: 100ms\n    timeout: 50ms\n    failure_threshold: 1\n    grace: 100ms\n    heartbeat_timeout: 200ms\n" +
		"agents:\n" + agentEntry(agent, "silent", dir)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfgPath, filepath.Join(dir, "data"))
	d.waitAgents(t, "silent running", allRunning("silent"))
	var probes []string
	for deadline := time.Now().Add(10 * time.Second); len(probes) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + d.addr + "/agents")
		if err != nil {
			t.Fatal(err)
		}
		var list []struct {
			Health *struct {
				Probes []struct{ Name string }
			} `json:"health"`
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list) == 1 && list[0].Health != nil {
			for _, p := range list[0].Health.Probes {
				probes = append(probes, p.Name)
			}
		}
	}
	if len(probes) == 0 || slices.Contains(probes, "heartbeat") {
		t.Fatalf("probes %v: want some, and no heartbeat probe for an agent without a socket", probes)
	}
}

// With 8080 taken (another user's daemon) and no -listen, the status API
// takes a free port and the banner says which.
func TestDefaultPortTakenFallsBack(t *testing.T) {
	dir, agent := daemonTestDir(t)
	l, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Skipf("cannot hold 127.0.0.1:8080 for the test: %v", err)
	}
	defer l.Close()
	cfgPath := filepath.Join(dir, "daemon.yaml")
	if err := os.WriteFile(cfgPath, []byte("agents:\n"+agentEntry(agent, "a", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, "-config", cfgPath, "-data", filepath.Join(dir, "data"))
	if strings.HasSuffix(d.addr, ":8080") {
		t.Fatalf("status API on %s, which is taken", d.addr)
	}
	// Its curl lines name an agent it runs, not the demo's.
	if !strings.Contains(d.banner, "/agents/a/logs") || strings.Contains(d.banner, "crasher") || strings.Contains(d.banner, "healthy") {
		t.Fatalf("banner:\n%s", d.banner)
	}
	d.waitAgents(t, "a running", allRunning("a"))
}

// An edit of an agent's health section takes effect on reload, though
// nothing in its Spec changed: the checker is rebuilt and probes the new
// endpoint (it used to go on probing the old one).
func TestHealthEditTakesEffect(t *testing.T) {
	dir, agent := daemonTestDir(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfgPath := filepath.Join(dir, "daemon.yaml")
	write := func(endpoint string) {
		cfg := "agents:\n" + agentEntry(agent, "web", dir, "-sd-serve", "-sd-own-port", addr) +
			"    health_check:\n      interval: 100ms\n      timeout: 50ms\n      http_endpoint: " + endpoint + "\n"
		tmp := cfgPath + ".tmp"
		os.WriteFile(tmp, []byte(cfg), 0o644)
		os.Rename(tmp, cfgPath)
	}
	write("http://" + addr + "/")
	d := startDaemon(t, cfgPath, filepath.Join(dir, "data"))
	d.waitAgents(t, "web running", allRunning("web"))
	write("http://127.0.0.1:1/healthz")
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + d.addr + "/agents")
		if err != nil {
			t.Fatal(err)
		}
		var list []struct {
			Health *struct {
				Probes []struct {
					Name      string `json:"name"`
					LastError string `json:"last_error"`
				} `json:"probes"`
			} `json:"health"`
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list) == 1 && list[0].Health != nil {
			for _, p := range list[0].Health.Probes {
				if p.Name == "http" && strings.Contains(p.LastError, "127.0.0.1:1") {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the checker never probed the new endpoint: %+v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// daemonInfo is GET /daemon.
type daemonInfo struct {
	PID        int       `json:"pid"`
	Executable string    `json:"executable"`
	StartedAt  time.Time `json:"started_at"`
}

func (d *runningDaemon) info(t *testing.T) daemonInfo {
	t.Helper()
	body, err := get("http://" + d.addr + "/daemon")
	if err != nil {
		t.Fatal(err)
	}
	var info daemonInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// waitUpgraded waits until a binary that started after was serves the API.
func (d *runningDaemon) waitUpgraded(t *testing.T, was daemonInfo) daemonInfo {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if now := d.info(t); now.StartedAt.After(was.StartedAt) {
			return now
		}
	}
	t.Fatal("the daemon did not upgrade")
	return daemonInfo{}
}

// The daemon upgrades in place twice, on SIGUSR2 and on POST /upgrade
// with the path of a new binary, under a client that opens a new
// connection to its API for every request: the same process, both
// exporters untouched (same PIDs, no restart, still serving), and no
// request refused or cut.
func TestEdgeDaemonUpgradesInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	requireExporters(t)
	d := startDaemon(t, filepath.Join("..", "configs", "exporters.yaml"), t.TempDir())
	before := d.waitAgents(t, "both exporters running", allRunning("node-exporter", "blackbox-exporter"))
	first := d.info(t)

	stop := make(chan struct{})
	var requests, failures atomic.Int64
	var lastFailure atomic.Value
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get("http://" + d.addr + "/agents")
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			requests.Add(1)
			if err != nil {
				failures.Add(1)
				lastFailure.Store(time.Now().Format("15:04:05.000000") + " " + err.Error())
			}
		}
	}()

	d.cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // checked by waitUpgraded
	second := d.waitUpgraded(t, first)
	next := filepath.Join(t.TempDir(), "edge-daemon.new")
	copyFile(t, first.Executable, next)
	resp := d.post(t, "/upgrade", fmt.Sprintf(`{"path": %q}`, next))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /upgrade: %v", resp.Status)
	}
	resp.Body.Close()
	third := d.waitUpgraded(t, second)
	time.Sleep(200 * time.Millisecond) // the client goes on against the new binary
	close(stop)
	<-polled

	if third.PID != first.PID || third.Executable != next {
		t.Fatalf("after the upgrades: %+v, want PID %d running %s", third, first.PID, next)
	}
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed across the upgrades; the last: %v", n, requests.Load(), lastFailure.Load())
	}
	after := d.agents(t)
	for name, a := range before {
		if after[name].PID != a.PID || after[name].Restarts != a.Restarts || after[name].State != "running" {
			t.Fatalf("%s: %+v after the upgrades, was %+v", name, after[name], a)
		}
	}
	for _, url := range []string{"http://127.0.0.1:9100/metrics", "http://127.0.0.1:9115/-/healthy"} {
		if _, err := get(url); err != nil {
			t.Fatalf("%s after the upgrades: %v", url, err)
		}
	}
	t.Logf("%d requests, none failed, across two upgrades", requests.Load())
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// The demo's one-shot setup task completes, the chain behind it starts in
// order (the collector once setup completed, the shipper once the
// collector is ready) and the hourly task waits for its next run.
func TestDemoRunsSetupChainAndHourlyTask(t *testing.T) {
	d := startDaemonWith(t, "-listen", "127.0.0.1:0", "-data", t.TempDir())
	d.waitAgents(t, "setup completed, collector and shipper running, inventory waiting", func(a map[string]agentJSON) bool {
		return a["setup"].State == "completed" && a["collector"].State == "running" && a["shipper"].State == "running" && a["inventory"].State == "waiting"
	})
	resp, err := http.Get("http://" + d.addr + "/agents")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []supervisor.Status
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	st := map[string]supervisor.Status{}
	for _, s := range list {
		st[s.Name] = s
	}
	setup, collector, shipper, inventory := st["setup"], st["collector"], st["shipper"], st["inventory"]
	if setup.LastExit == nil || setup.LastExit.Code != 0 || !collector.StartedAt.After(setup.LastExit.Time) {
		t.Errorf("setup exit %+v, collector started %v: want the collector after setup's successful exit", setup.LastExit, collector.StartedAt)
	}
	if !shipper.StartedAt.After(collector.StartedAt.Add(2 * time.Second)) {
		t.Errorf("shipper started %v, collector %v: want the shipper after the collector's 2s start", shipper.StartedAt, collector.StartedAt)
	}
	if until := time.Until(inventory.NextRunAt); until <= 0 || until > 65*time.Minute || inventory.Run != 0 {
		t.Errorf("inventory: run %d, next run in %v; want none yet, one within the hour (plus jitter)", inventory.Run, until)
	}
}

package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
)

// startAgent runs the test agent and kills it at the end of the test.
func startAgent(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(agentPath, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func pidOf(cmd *exec.Cmd) func() int { return func() int { return cmd.Process.Pid } }

func TestProcessAlive(t *testing.T) {
	ctx := context.Background()
	cmd := startAgent(t)
	probe := ProcessAlive(pidOf(cmd))
	if err := probe.Check(ctx); err != nil {
		t.Fatalf("live agent: %v", err)
	}
	cmd.Process.Kill()
	time.Sleep(50 * time.Millisecond) // not reaped yet: a zombie
	if st, _ := procfs.ReadStat(cmd.Process.Pid); st.State != 'Z' {
		t.Fatalf("expected a zombie, state %c", st.State)
	}
	if err := probe.Check(ctx); !errors.Is(err, ErrNoProcess) || !strings.Contains(err.Error(), "zombie") {
		t.Fatalf("zombie: %v", err)
	}
	cmd.Wait()
	if err := probe.Check(ctx); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("reaped: %v", err)
	}
	if err := ProcessAlive(func() int { return 0 }).Check(ctx); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("pid 0: %v", err)
	}
}

// A process that took over the PID (another start time) is not "alive".
func TestProcessAliveNoticesPIDReuse(t *testing.T) {
	cmd := startAgent(t)
	probe := ProcessAlive(pidOf(cmd)).(*processAlive)
	if err := probe.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	probe.started-- // what a recycled PID looks like: the same number, another start time
	if err := probe.Check(context.Background()); !errors.Is(err, ErrNoProcess) || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("reused pid: %v", err)
	}
}

func TestHeartbeat(t *testing.T) {
	hb := NewHeartbeat(100 * time.Millisecond)
	if err := hb.Check(context.Background()); err != nil {
		t.Fatalf("fresh heartbeat: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if err := hb.Check(context.Background()); err == nil {
		t.Fatal("stale heartbeat passed")
	}
	hb.BeatAt(time.Now().Add(-time.Hour)) // older than the last: ignored
	if err := hb.Check(context.Background()); err == nil {
		t.Fatal("an old beat refreshed the heartbeat")
	}
	hb.Beat()
	if err := hb.Check(context.Background()); err != nil {
		t.Fatalf("after Beat: %v", err)
	}
}

func TestResourcesCPUAndMemory(t *testing.T) {
	ctx := context.Background()
	spinner := startAgent(t, "-spin")
	cpu := NewResources(pidOf(spinner), Limits{CPUPercent: 15, Sustain: 300 * time.Millisecond})
	cpu.Check(ctx) // first sample: no delta yet
	time.Sleep(200 * time.Millisecond)
	if err := cpu.Check(ctx); err != nil {
		t.Fatalf("over the limit for less than Sustain must pass: %v", err)
	}
	if u := cpu.Last(); u.CPUPercent < 25 { // a full core when the machine is idle; less when CI is busy
		t.Fatalf("spinning agent measured at %.1f%% CPU", u.CPUPercent)
	}
	time.Sleep(350 * time.Millisecond)
	if err := cpu.Check(ctx); err == nil || !strings.Contains(err.Error(), "CPU") {
		t.Fatalf("sustained spin: %v, want a CPU failure", err)
	}

	hog := startAgent(t, "-alloc-mb", "64")
	mem := NewResources(pidOf(hog), Limits{RSSBytes: 32 << 20, Sustain: time.Nanosecond})
	deadline := time.Now().Add(5 * time.Second)
	for mem.Check(ctx) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("64 MiB agent never over a 32 MiB limit; last %+v", mem.Last())
		}
		time.Sleep(20 * time.Millisecond)
	}

	idle := startAgent(t)
	quiet := NewResources(pidOf(idle), Limits{CPUPercent: 30, RSSBytes: 1 << 30, Sustain: 120 * time.Millisecond})
	for range 3 {
		if err := quiet.Check(ctx); err != nil {
			t.Fatalf("idle agent: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestResourcesTreeCountsDescendants(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", agentPath+" -spin & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("pkill", "-P", strconv.Itoa(cmd.Process.Pid)).Run()
		cmd.Process.Kill()
		cmd.Wait()
	})
	tree := NewResources(pidOf(cmd), Limits{Tree: true})
	alone := NewResources(pidOf(cmd), Limits{})
	time.Sleep(100 * time.Millisecond)
	tree.Sample(context.Background())
	alone.Sample(context.Background())
	time.Sleep(300 * time.Millisecond)
	tu, _ := tree.Sample(context.Background())
	au, _ := alone.Sample(context.Background())
	if tu.Processes < 2 || tu.CPUPercent < 25 || au.CPUPercent > 20 {
		t.Fatalf("tree %+v, shell alone %+v: want the spinning child counted only in the tree", tu, au)
	}
}

func TestHTTPGet(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/here":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/ok", http.StatusFound)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	for path, healthy := range map[string]bool{"/ok": true, "/fail": false, "/here": true, "/away": false} {
		err := HTTPGet(srv.URL + path).Check(ctx)
		if (err == nil) != healthy {
			t.Errorf("GET %s: %v, want healthy=%v", path, err, healthy)
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	if err := TCPConnect(addr).Check(ctx); err != nil {
		t.Errorf("TCP to a listener: %v", err)
	}
	ln.Close()
	if err := TCPConnect(addr).Check(ctx); err == nil {
		t.Error("TCP to a closed port passed")
	}
}

func TestExecProbeKillsItsGroupOnTimeout(t *testing.T) {
	ctx := context.Background()
	if err := Exec("/bin/true").Check(ctx); err != nil {
		t.Fatalf("true: %v", err)
	}
	if err := Exec("/bin/sh", "-c", "echo broken config; exit 3").Check(ctx); err == nil || !strings.Contains(err.Error(), "broken config") {
		t.Fatalf("failing command: %v", err)
	}
	pidFile := t.TempDir() + "/bg.pid"
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := Exec("/bin/sh", "-c", "sleep 100 & echo $! > "+pidFile+"; wait").Check(tctx)
	if err == nil || time.Since(begin) > 3*time.Second {
		t.Fatalf("hung check: %v after %v", err, time.Since(begin))
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	time.Sleep(50 * time.Millisecond)
	if st, err := procfs.ReadStat(pid); err == nil && st.Live() {
		t.Fatalf("the check's background child %d survived the timeout", pid)
	}
}

// A tree probe takes the tree's CPU time and memory from its source (a
// cgroup) and computes CPU percent between samples; a CPU time that goes
// back (a new cgroup) starts over, and a failing source is ErrNoProcess.
func TestTreeResourcesFromSource(t *testing.T) {
	start := time.Now()
	var fail error
	cpu := func() time.Duration { return time.Since(start) / 2 } // half a core
	r := NewTreeResources(func() (TreeUsage, error) {
		return TreeUsage{CPU: cpu(), RSSBytes: 42 << 20, Processes: 7}, fail
	}, Limits{})
	u, err := r.Sample(context.Background())
	if err != nil || u.CPUPercent != 0 || u.RSSBytes != 42<<20 || u.Processes != 7 {
		t.Fatalf("first sample %+v, %v", u, err)
	}
	time.Sleep(50 * time.Millisecond) // the source's CPU time follows the wall clock
	if u, _ = r.Sample(context.Background()); u.CPUPercent < 40 || u.CPUPercent > 60 {
		t.Fatalf("CPU %.1f%%, want about 50", u.CPUPercent)
	}
	cpu = func() time.Duration { return 0 }
	if u, _ = r.Sample(context.Background()); u.CPUPercent != 0 {
		t.Fatalf("CPU %.1f%% after the source started over, want 0", u.CPUPercent)
	}
	fail = errors.New("cgroup gone")
	if _, err := r.Sample(context.Background()); !errors.Is(err, ErrNoProcess) {
		t.Fatalf("failing source: %v, want ErrNoProcess", err)
	}
}

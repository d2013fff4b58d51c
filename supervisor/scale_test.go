package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// threads returns this process's OS thread count from /proc.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(rest))
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// superviseMany starts n agents, kills them all from outside, and checks
// every one comes back; it returns the thread count seen while they ran.
func superviseMany(t *testing.T, n int, blocking bool) int {
	sleep := "/bin/sleep"
	if _, err := os.Stat(sleep); err != nil {
		t.Skip("no /bin/sleep")
	}
	g := newGroup(t, GroupOptions{})
	for i := range n {
		// The default crash tail pipes stdout and stderr: their copiers
		// must park in the netpoller as well.
		cfg, err := g.resolve(Spec{Name: fmt.Sprintf("s%d", i), Path: sleep, Args: []string{"100000"},
			StartSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		cfg.blockingWait = blocking
		g.mu.Lock()
		g.attach(cfg, Spec{})
		g.mu.Unlock()
	}
	events := make(chan Event, 4*n)
	defer g.Subscribe(func(e Event) { events <- e })()
	if err := g.StartAll(ctxTimeout(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the waiters settle
	running := threads(t)
	for _, st := range g.List() {
		syscall.Kill(st.PID, syscall.SIGKILL)
	}
	back := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for len(back) < n {
		select {
		case e := <-events:
			if e.To == Running && e.Status.Restarts == 1 {
				back[e.Name] = true
			}
		case <-deadline:
			t.Fatalf("%d of %d agents back after an external SIGKILL", len(back), n)
		}
	}
	return running
}

// 500 agents run on a handful of OS threads: exits are awaited on pidfds in
// the netpoller, not in one blocked thread each.
func TestManyAgentsFewThreads(t *testing.T) {
	n := 500
	if testing.Short() {
		n = 100
	}
	running := superviseMany(t, n, false)
	// A blocked Wait per child would need n threads. The runtime keeps the
	// threads it created for the burst of fork/exec syscalls during StartAll
	// (a handful on an idle machine, a few dozen on a loaded one), so the
	// bound is far below n rather than a small constant.
	if bound := n / 5; running > bound {
		t.Fatalf("%d OS threads while %d agents run, want at most %d", running, n, bound)
	}
	t.Logf("%d agents on %d OS threads", n, running)
}

// The blocking fallback (no pidfd) supervises just as correctly, at the
// cost of a thread per child.
func TestBlockingWaitFallback(t *testing.T) {
	running := superviseMany(t, 50, true)
	if running < 50 {
		t.Fatalf("%d OS threads for 50 blocking waiters: the fallback was not used", running)
	}
	t.Logf("50 agents on %d OS threads with the blocking fallback", running)
}

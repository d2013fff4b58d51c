package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/procfs"
	"github.com/tend-dev/tend/internal/testagent"
)

// agentSpec is a Spec for the test agent with fast timings.
func agentSpec(t *testing.T, args ...string) Spec {
	t.Helper()
	return Spec{
		Name:         strings.ReplaceAll(t.Name(), "/", "_"),
		Path:         agentPath,
		Args:         args,
		StartSeconds: config.Duration(50 * time.Millisecond),
		StopTimeout:  config.Duration(5 * time.Second),
		Restart:      RestartSpec{Backoff: backoff.None()},
		Logger:       testr.New(t),
	}
}

// newProcess builds a Process and makes sure the test leaves it stopped.
func newProcess(t *testing.T, spec Spec) *Process {
	t.Helper()
	p, err := New(spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("cleanup Close: %v", err)
		}
		if _, err := p.Wait(ctx); err != nil {
			t.Errorf("cleanup Wait: %v", err)
		}
	})
	return p
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recorder collects a Process's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func record(t *testing.T, p *Process) *recorder {
	r := &recorder{notify: make(chan struct{}, 1)}
	cancel := p.Subscribe(func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
	})
	t.Cleanup(cancel)
	return r
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// waitFor blocks until an event satisfies match and returns it.
func (r *recorder) waitFor(t *testing.T, timeout time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		evs := r.snapshot()
		for ; seen < len(evs); seen++ {
			if match(evs[seen]) {
				return evs[seen]
			}
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("no event %s within %v; got %v", what, timeout, evs)
		}
	}
}

func (r *recorder) waitState(t *testing.T, timeout time.Duration, s State) Event {
	t.Helper()
	return r.waitFor(t, timeout, "to "+s.String(), func(e Event) bool { return e.To == s })
}

// transitions renders the recorded events as "from->to" strings.
func (r *recorder) transitions() []string {
	var out []string
	for _, e := range r.snapshot() {
		out = append(out, e.From.String()+"->"+e.To.String())
	}
	return out
}

// alive reports whether pid is a live (non-zombie) process, read from /proc.
func alive(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && st.Live()
}

// waitGone waits until pid is no longer a live process.
func waitGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after %v", pid, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readPIDs waits for the file the test agent writes and parses its PIDs.
func readPIDs(t *testing.T, path string, want int) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var pids []int
			for _, f := range strings.Fields(string(b)) {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("bad pid %q in %s", f, path)
				}
				pids = append(pids, n)
			}
			if len(pids) >= want {
				return pids
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %d pids within 5s (err %v)", path, want, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tempFile(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}

// lockedWriter is a concurrency-safe bytes sink for a child's output.
type lockedWriter = testagent.Output

// failingWriter fails every write, like a full disk.
type failingWriter struct{ calls atomic.Int64 }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls.Add(1)
	return 0, syscall.ENOSPC
}

// waitStates waits until each named agent is in its state.
func waitStates(t *testing.T, g *Group, want map[string]State) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		ok := true
		for name, s := range want {
			if p, found := g.Get(name); !found || p.Status().State != s {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents did not reach %v: %v", want, g.List())
		}
	}
}

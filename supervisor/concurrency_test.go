package supervisor

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// Many goroutines hammer one Process with Start, Stop, Restart and Signal.
// Whatever the interleaving: never two live children at once, no lost stop
// (after the final Stop nothing runs), no deadlock.
func TestConcurrentControlNeverYieldsTwoChildren(t *testing.T) {
	spec := agentSpec(t)
	spec.StartSeconds = config.Duration(5 * time.Millisecond)
	spec.StopTimeout = config.Duration(time.Second)
	p := newProcess(t, spec)

	var mu sync.Mutex
	var pids []int
	violations := make(chan string, 100)
	cancel := p.Subscribe(func(e Event) {
		if e.To != Starting {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		// Every earlier child must be gone before a new one starts.
		for _, old := range pids {
			if alive(old) {
				violations <- "child " + strconv.Itoa(e.Status.PID) + " started while " + strconv.Itoa(old) + " was alive"
			}
		}
		pids = append(pids, e.Status.PID)
	})
	defer cancel()

	iterations := 150
	if testing.Short() {
		iterations = 10
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range iterations {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				switch r.IntN(4) {
				case 0:
					p.Start(ctx)
				case 1:
					p.Stop(ctx)
				case 2:
					p.Restart(ctx)
				case 3:
					p.Signal(syscall.SIGCONT)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("final Stop: %v", err)
	}
	st, err := p.Wait(ctxTimeout(t, 10*time.Second))
	if err != nil || st.State != Stopped || st.PID != 0 {
		t.Fatalf("after final Stop: %+v, %v", st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("child %d alive after the final Stop", pid)
		}
	}
	close(violations)
	for v := range violations {
		t.Error(v)
	}
	t.Logf("%d children over %d operations", len(pids), 8*iterations)
}

// The binary disappears during an upgrade: the restart's spawn error is one
// more failed run paced by backoff, and the agent comes back once the
// binary does.
func TestSpawnErrorOnRestartGoesThroughBackoff(t *testing.T) {
	bin := copyAgent(t)
	spec := agentSpec(t, "-exit", "1", "-after", "200ms")
	spec.Path = bin
	spec.Restart.MaxRestarts = -1
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin, bin+".moved"); err != nil {
		t.Fatal(err)
	}
	ev := rec.waitFor(t, 5*time.Second, "spawn failure", func(e Event) bool { return e.Reason == ReasonSpawnFailed })
	if ev.To != Backoff || ev.Status.LastExit == nil || ev.Status.LastExit.Err == "" {
		t.Fatalf("spawn failure on restart: %v %+v, want Backoff with the error", ev, ev.Status.LastExit)
	}
	if err := os.Rename(bin+".moved", bin); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 5*time.Second, "running again", func(e Event) bool { return e.To == Running && e.Time.After(ev.Time) })
}

// A hook that blocks does not hold up supervision: the Process goes on
// restarting, and the hook later receives every event in order.
func TestSlowSubscriberDoesNotDelaySupervision(t *testing.T) {
	spec := agentSpec(t, "-exit", "1", "-after", "60ms")
	spec.Restart.MaxRestarts = -1
	p := newProcess(t, spec)
	release := make(chan struct{})
	var mu sync.Mutex
	var slow []Event
	cancel := p.Subscribe(func(e Event) {
		<-release
		mu.Lock()
		slow = append(slow, e)
		mu.Unlock()
	})
	defer cancel()
	fast := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	fast.waitFor(t, 5*time.Second, "third run", func(e Event) bool { return e.To == Running && e.Status.Restarts == 2 })
	close(release)
	p.Stop(ctxTimeout(t, 5*time.Second))
	fast.waitState(t, 5*time.Second, Stopped)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(slow)
		mu.Unlock()
		if n == len(fast.snapshot()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow hook got %d events, fast one %d", n, len(fast.snapshot()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, e := range fast.snapshot() {
		if slow[i].From != e.From || slow[i].To != e.To || !slow[i].Time.Equal(e.Time) {
			t.Fatalf("event %d: slow hook got %v, fast %v", i, slow[i], e)
		}
	}
}

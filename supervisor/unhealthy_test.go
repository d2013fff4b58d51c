package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// A health verdict is a failed run: the child is stopped, the exit goes
// through the restart decision with backoff, is counted in Restarts and
// carries the reason; three in a row exceed MaxRestarts 2 and the agent is
// Failed, where a verdict is no longer taken.
func TestVirtualUnhealthyGoesThroughTheRestartDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{termDelay: 100 * ms} }}
		p := fakeProcess(t, Spec{StartSeconds: config.Duration(time.Second), Restart: RestartSpec{MaxRestarts: 2,
			Backoff: backoff.Constant(5 * time.Second)}}, f)
		var mu sync.Mutex
		var events []Event
		defer p.Subscribe(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })()
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		var exits []time.Time
		for i := 1; i <= 3; i++ {
			run, running := p.CurrentRun()
			if !running || run != uint64(i) {
				t.Fatalf("verdict %d: run %d, running %v", i, run, running)
			}
			if err := p.Unhealthy(context.Background(), run, "metrics: connection refused"); err != nil {
				t.Fatalf("verdict %d: %v", i, err)
			}
			if err := p.Unhealthy(context.Background(), run, "again"); !errors.Is(err, ErrNotApplicable) {
				t.Fatalf("a second verdict on a stopping run: %v, want ErrNotApplicable", err)
			}
			for p.Status().State == Stopping {
				time.Sleep(ms)
			}
			exits = append(exits, p.Status().LastExit.Time)
			for st := p.Status(); st.State != Running && st.State != Failed; st = p.Status() {
				time.Sleep(ms)
			}
		}
		st := p.Status()
		if st.State != Failed || st.Restarts != 2 || !strings.HasPrefix(st.LastExit.Err, "unhealthy: metrics: connection refused") {
			t.Fatalf("after three verdicts: %+v, want Failed after 2 counted restarts", st)
		}
		// The exit comes 100ms after the verdict (the fake's reaction to
		// the stop signal); the first restart is immediate, the second
		// waits the 5s backoff from the exit.
		f.mu.Lock()
		spawns := slices.Clone(f.spawns)
		f.mu.Unlock()
		if len(spawns) != 3 || !spawns[1].Equal(exits[0]) || !spawns[2].Equal(exits[1].Add(5*time.Second)) {
			t.Fatalf("spawns at %v, exits at %v", spawns, exits)
		}
		if err := p.Unhealthy(context.Background(), st.Run, "x"); !errors.Is(err, ErrNotApplicable) {
			t.Fatalf("verdict on a Failed agent: %v, want ErrNotApplicable", err)
		}
		stopNow(t, p) // ends the retry Failed keeps pending
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		var unhealthy int
		for _, e := range events {
			if e.Reason == ReasonUnhealthy {
				unhealthy++
			}
		}
		// Running -> Stopping three times, Stopping -> Backoff twice; the
		// third exit is Stopping -> Failed for the restart limit.
		if unhealthy != 5 {
			t.Fatalf("%d events with reason unhealthy, want 5", unhealthy)
		}
	})
}

// A verdict on a run that is over, or on an agent that is not Running, is
// not taken: a stopped agent is never started by one.
func TestUnhealthyLeavesOthersAlone(t *testing.T) {
	spec := agentSpec(t)
	p := newProcess(t, spec)
	if err := p.Unhealthy(context.Background(), 0, "x"); !errors.Is(err, ErrNotApplicable) {
		t.Fatalf("verdict on a never-started agent: %v", err)
	}
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	run, _ := p.CurrentRun()
	if err := p.Restart(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := p.Unhealthy(context.Background(), run, "stale"); !errors.Is(err, ErrNotApplicable) || p.Status().State != Running {
		t.Fatalf("verdict on the previous run: %v, state %v", err, p.Status().State)
	}
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	run, _ = p.CurrentRun()
	if err := p.Unhealthy(context.Background(), run, "stopped"); !errors.Is(err, ErrNotApplicable) || p.Status().State != Stopped {
		t.Fatalf("verdict on a stopped agent: %v, state %v", err, p.Status().State)
	}
}

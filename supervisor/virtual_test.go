package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// These tests drive the restart logic in virtual time (testing/synctest)
// with fake children, so every delay is checked to the nanosecond without
// sleeping. What the kernel decides (signals, reaping, pipes) is tested
// with real processes elsewhere.

const ms = time.Millisecond

// startInBackground calls Start without waiting for it; its result is
// read after the test's Stop.
func startInBackground(p *Process) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- p.Start(context.Background()) }()
	return errc
}

func stopNow(t *testing.T, p *Process) {
	t.Helper()
	if err := p.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// The first restart of a streak is immediate; restart k waits Delay(k-1)
// from the exit, up to the policy's cap.
func TestVirtualBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{exitAfter: 100 * ms, code: 1} }}
		p := fakeProcess(t, Spec{Restart: RestartSpec{MaxRestarts: -1,
			Backoff: backoff.Exponential{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, NoJitter: true}}}, f)
		started := startInBackground(p)
		time.Sleep(24 * time.Second)
		stopNow(t, p)
		<-started
		want := []time.Duration{0, 100 * ms, 1200 * ms, 3300 * ms, 7400 * ms, 15500 * ms, 23600 * ms}
		if got := f.spawnOffsets(); !slices.Equal(got, want) {
			t.Fatalf("spawns at %v, want %v", got, want)
		}
	})
}

// More than MaxRestarts within RestartWindow is Failed, with the recent
// exits; RetryFailedAfter later the agent starts over with clean counters.
func TestVirtualRestartLimitAndRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{exitAfter: 100 * ms, code: 2} }}
		p := fakeProcess(t, Spec{Restart: RestartSpec{MaxRestarts: 3, RestartWindow: config.Duration(time.Minute),
			RetryFailedAfter: config.Duration(30 * time.Minute), Backoff: backoff.None()}}, f)
		var failedAt []time.Duration
		var exits []int
		begin := time.Now()
		defer p.Subscribe(func(e Event) {
			if e.To == Failed {
				failedAt = append(failedAt, e.Time.Sub(begin))
				exits = append(exits, len(e.Exits))
				if e.Reason != ReasonRestartLimit {
					t.Errorf("Failed for %v, want the restart limit", e.Reason)
				}
			}
		})()
		err := p.Start(context.Background())
		if !errors.Is(err, ErrStartFailed) {
			t.Fatalf("Start = %v, want ErrStartFailed once the limit is reached", err)
		}
		time.Sleep(31 * time.Minute)
		stopNow(t, p)
		synctest.Wait()
		// The retry is an automatic restart like the others: it counts
		// toward the fresh window.
		retry := 30*time.Minute + 400*ms
		want := []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, retry, retry + 100*ms, retry + 200*ms}
		if got := f.spawnOffsets(); !slices.Equal(got, want) {
			t.Fatalf("spawns at %v, want %v", got, want)
		}
		if !slices.Equal(failedAt, []time.Duration{400 * ms, retry + 300*ms}) {
			t.Fatalf("Failed at %v, want 400ms and %v", failedAt, retry+300*ms)
		}
		if !slices.Equal(exits, []int{4, 3}) { // each window's own exits only
			t.Fatalf("Failed events carried %v exits, want 4 then 3", exits)
		}
	})
}

// A child that stays Running for ResetAfter clears the streak: its exit is
// restarted at once, as the first of a new streak.
func TestVirtualResetAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(n int) fakeRun {
			if n == 3 {
				return fakeRun{exitAfter: 6 * time.Minute, code: 1}
			}
			return fakeRun{exitAfter: 100 * ms, code: 1}
		}}
		p := fakeProcess(t, Spec{Restart: RestartSpec{MaxRestarts: -1, ResetAfter: config.Duration(5 * time.Minute),
			Backoff: backoff.Exponential{Initial: time.Second, Max: time.Minute, Multiplier: 2, NoJitter: true}}}, f)
		started := startInBackground(p)
		time.Sleep(8 * time.Minute)
		stopNow(t, p)
		<-started
		// Run 3 lives 6 minutes from 1.2s: its exit starts a new streak, so
		// run 4 follows at once (not after Delay(2) = 2s) and run 5 after
		// Delay(1) = 1s.
		run3End := 1200*ms + 6*time.Minute
		want := []time.Duration{0, 100 * ms, 1200 * ms, run3End, run3End + 1100*ms, run3End + 3200*ms}
		if got := f.spawnOffsets(); !slices.Equal(got[:6], want) {
			t.Fatalf("spawns at %v, want %v first", got, want)
		}
	})
}

// A Ready probe that never passes gets the child killed at StartTimeout,
// and that run counts as failed.
func TestVirtualStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{} }}
		p := fakeProcess(t, Spec{StartTimeout: config.Duration(5 * time.Second),
			Ready:   func(context.Context) error { return errors.New("not yet") },
			Restart: RestartSpec{MaxRestarts: -1, Backoff: backoff.Constant(time.Second)}}, f)
		started := startInBackground(p)
		time.Sleep(12 * time.Second)
		st := p.Status()
		stopNow(t, p)
		<-started
		want := []time.Duration{0, 5 * time.Second, 11 * time.Second}
		if got := f.spawnOffsets(); !slices.Equal(got, want) {
			t.Fatalf("spawns at %v, want %v", got, want)
		}
		if x := st.LastExit; x == nil || !strings.HasPrefix(x.Err, "start timeout") || x.Signal != Signal(syscall.SIGKILL) {
			t.Fatalf("last exit %+v, want a start timeout by SIGKILL", x)
		}
	})
}

// Stop waits StopTimeout for the stop signal to work, or less when the
// caller's deadline is sooner, then kills; a child that obeys takes its
// own time.
func TestVirtualStopEscalation(t *testing.T) {
	cases := []struct {
		name     string
		run      fakeRun
		deadline time.Duration // of Stop's ctx; 0 for none
		want     time.Duration
	}{
		{"obeys", fakeRun{termDelay: 2 * time.Second}, 0, 2 * time.Second},
		{"ignores", fakeRun{ignoreTerm: true}, 0, 30 * time.Second},
		{"ignores, caller in a hurry", fakeRun{ignoreTerm: true}, 3 * time.Second, 3 * time.Second},
		{"slower than the caller", fakeRun{termDelay: 10 * time.Second}, 4 * time.Second, 4 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeChildren{behave: func(int) fakeRun { return c.run }}
				p := fakeProcess(t, Spec{StopTimeout: config.Duration(30 * time.Second)}, f)
				if err := p.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if c.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, c.deadline)
					defer cancel()
				}
				begin := time.Now()
				if err := p.Stop(ctx); err != nil {
					t.Fatalf("Stop: %v", err)
				}
				if took := time.Since(begin); took != c.want {
					t.Fatalf("Stop took %v, want %v", took, c.want)
				}
				if x := p.Status().LastExit; x == nil || !x.Requested {
					t.Fatalf("last exit %+v, want a requested one", x)
				}
			})
		})
	}
}

// Spawn failures at automatic restarts are paced by at least
// spawnRetryFloor even with a zero backoff, and Stop is served meanwhile.
func TestVirtualSpawnFailurePacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(n int) fakeRun {
			if n == 1 {
				return fakeRun{exitAfter: 100 * ms, code: 1}
			}
			return fakeRun{spawnErr: errFakeSpawn}
		}}
		p := fakeProcess(t, Spec{Restart: RestartSpec{MaxRestarts: -1, Backoff: backoff.None()}}, f)
		started := startInBackground(p)
		time.Sleep(450 * ms)
		begin := time.Now()
		stopNow(t, p)
		if took := time.Since(begin); took != 0 {
			t.Fatalf("Stop took %v in Backoff, want at once", took)
		}
		<-started
		want := []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms}
		if got := f.spawnOffsets(); !slices.Equal(got, want) {
			t.Fatalf("spawn attempts at %v, want %v", got, want)
		}
		if st := p.Status(); st.State != Stopped || st.LastExit == nil || !strings.Contains(st.LastExit.Err, errFakeSpawn.Error()) {
			t.Fatalf("status %+v, last exit %+v", st, st.LastExit)
		}
	})
}

// first_delay paces the first restart of a streak; the backoff the rest.
func TestVirtualFirstDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{exitAfter: 100 * ms, code: 1} }}
		p := fakeProcess(t, Spec{Restart: RestartSpec{MaxRestarts: -1, FirstDelay: config.Duration(3 * time.Second),
			Backoff: backoff.Constant(time.Second)}}, f)
		started := startInBackground(p)
		time.Sleep(5500 * ms)
		stopNow(t, p)
		<-started
		want := []time.Duration{0, 3100 * ms, 4200 * ms, 5300 * ms}
		if got := f.spawnOffsets(); !slices.Equal(got, want) {
			t.Fatalf("spawns at %v, want %v", got, want)
		}
	})
}

package supervisor

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// A scheduled task runs at each due time of its schedule, to the
// nanosecond, and a run due while the previous one is still under way is
// skipped: runs never overlap.
func TestVirtualScheduleRunsAtDueTimesAndNeverOverlaps(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs time.Duration // how long each run lasts
		want []time.Duration
	}{
		{"short runs", 10 * time.Second, []time.Duration{1 * time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute}},
		// each run lasts 90s: the one due at 2m finds the 1m one running
		{"runs longer than the period", 90 * time.Second, []time.Duration{1 * time.Minute, 3 * time.Minute, 5 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{exitAfter: tc.runs} }}
				p := fakeProcess(t, Spec{Task: &TaskSpec{Schedule: "@every 1m"}}, f)
				begin := time.Now()
				if err := p.Start(context.Background()); err != nil {
					t.Fatalf("Start: %v", err)
				}
				if st := p.Status(); st.State != Waiting || st.NextRunAt.Sub(begin) != time.Minute {
					t.Fatalf("after Start: %v, next run in %v; want waiting, 1m", st.State, st.NextRunAt.Sub(begin))
				}
				time.Sleep(5*time.Minute + 30*time.Second)
				synctest.Wait()
				var got []time.Duration
				for _, s := range f.spawnTimes() {
					got = append(got, s.Sub(begin))
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("runs at %v, want %v", got, tc.want)
				}
				st := p.Status()
				if st.State != Completed && st.State != Starting {
					t.Fatalf("state %v between runs", st.State)
				}
				stopNow(t, p)
				if st := p.Status(); st.State != Stopped || !st.NextRunAt.IsZero() {
					t.Fatalf("after Stop: %v, next run %v; want stopped, none", st.State, st.NextRunAt)
				}
				time.Sleep(10 * time.Minute) // disarmed: no more runs
				if n := len(f.spawnTimes()); n != len(tc.want) {
					t.Fatalf("%d runs after Stop, want %d", n, len(tc.want))
				}
			})
		})
	}
}

// Jitter delays each run by less than its bound, and a failed scheduled
// run retries through the backoff while the next due run is skipped.
func TestVirtualScheduleJitterAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(n int) fakeRun {
			if n == 1 {
				return fakeRun{exitAfter: time.Second, code: 1}
			}
			return fakeRun{exitAfter: time.Second}
		}}
		p := fakeProcess(t, Spec{Task: &TaskSpec{Schedule: "@every 1h", Jitter: config.Duration(10 * time.Minute)},
			Restart: RestartSpec{FirstDelay: config.Duration(30 * time.Second), Backoff: backoff.None()}}, f)
		begin := time.Now()
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4*time.Hour + 10*time.Minute)
		synctest.Wait()
		spawns := f.spawnTimes()
		if len(spawns) != 5 { // the first due run, its retry, three more
			t.Fatalf("%d spawns, want 5", len(spawns))
		}
		due := []time.Duration{time.Hour, time.Hour, 2 * time.Hour, 3 * time.Hour, 4 * time.Hour}
		for i, s := range spawns {
			off := s.Sub(begin)
			if i == 1 {
				if want := spawns[0].Sub(begin) + time.Second + 30*time.Second; off != want {
					t.Fatalf("retry at %v, want %v (exit after 1s, first_delay 30s)", off, want)
				}
				continue
			}
			if off < due[i] || off >= due[i]+10*time.Minute {
				t.Fatalf("run %d at %v, want within [%v, %v)", i, off, due[i], due[i]+10*time.Minute)
			}
		}
		if st := p.Status(); st.Restarts != 1 {
			t.Fatalf("Restarts %d, want 1", st.Restarts)
		}
		stopNow(t, p)
	})
}

// A run that came due while the task was stopped (the host down) runs
// once at the next Start, not once per missed due time.
func TestVirtualScheduleMissedRunRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{exitAfter: time.Second} }}
		p := fakeProcess(t, Spec{Task: &TaskSpec{Schedule: "@every 1m"}}, f)
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(61 * time.Second)
		synctest.Wait()
		stopNow(t, p)
		time.Sleep(10 * time.Minute)
		restarted := time.Now()
		var reasons []Reason
		cancel := p.Subscribe(func(e Event) { reasons = append(reasons, e.Reason) })
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		cancel()
		spawns := f.spawnTimes()
		if len(spawns) != 2 || !spawns[1].Equal(restarted) {
			t.Fatalf("spawns %v; want the first run and one missed run at once, at %v", spawns, restarted)
		}
		if !slices.Contains(reasons, ReasonMissedRun) {
			t.Fatalf("reasons %v, want %q", reasons, ReasonMissedRun)
		}
		if st := p.Status(); st.State != Completed || st.NextRunAt.Sub(restarted) != time.Minute {
			t.Fatalf("%v, next run in %v; want completed, next in 1m", st.State, st.NextRunAt.Sub(restarted))
		}
		stopNow(t, p)
	})
}

// A task killed at its timeout counts as a failed run.
func TestVirtualTaskTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{exitAfter: time.Hour} }}
		p := fakeProcess(t, Spec{Task: &TaskSpec{Timeout: config.Duration(5 * time.Minute)}, Restart: RestartSpec{Policy: RestartNever}}, f)
		err := p.Start(context.Background())
		st := p.Status()
		if err == nil || st.State != Exited || st.LastExit == nil || st.LastExit.Err != "task timeout: still running after 5m0s" || st.LastExit.Ran != 5*time.Minute {
			t.Fatalf("Start: %v; status %v, exit %+v; want exited after a 5m task timeout", err, st.State, st.LastExit)
		}
	})
}

package supervisor

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// The first restart of a streak is immediate; restart k waits
// Backoff.Delay(k-1), measured from the reap of the previous child.
func TestRestartTimelineFollowsBackoff(t *testing.T) {
	spec := agentSpec(t, "-exit", "1", "-after", "10ms")
	spec.Restart.Backoff = backoff.Exponential{Initial: 150 * time.Millisecond, Multiplier: 2, NoJitter: true}
	spec.Restart.MaxRestarts = -1
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 100*time.Millisecond)); err == nil {
		t.Fatal("Start returned nil for an agent that dies before StartSeconds")
	}
	// Four runs: the first, then restarts after 0, 150ms and 300ms.
	rec.waitFor(t, 10*time.Second, "fourth start", func(e Event) bool { return e.To == Starting && e.Status.Restarts == 3 })
	var gaps []time.Duration
	var lastExit time.Time
	for _, e := range rec.snapshot() {
		switch {
		case e.To == Backoff:
			lastExit = e.Status.LastExit.Time
			if want := e.Status.NextRestartAt; want.Before(lastExit) {
				t.Fatalf("NextRestartAt %v before the exit %v", want, lastExit)
			}
		case e.To == Starting && !lastExit.IsZero():
			gaps = append(gaps, e.Time.Sub(lastExit))
		}
	}
	want := []time.Duration{0, 150 * time.Millisecond, 300 * time.Millisecond}
	if len(gaps) < len(want) {
		t.Fatalf("gaps %v, want at least %d", gaps, len(want))
	}
	for i, w := range want {
		if gaps[i] < w || gaps[i] > w+time.Second {
			t.Errorf("restart %d came %v after the exit, want %v (a second's slack above)", i+1, gaps[i], w)
		}
	}
	var streaks []int
	for _, e := range rec.snapshot() {
		if e.To == Backoff {
			streaks = append(streaks, e.Status.Streak)
		}
	}
	if !slices.Equal(streaks[:3], []int{1, 2, 3}) {
		t.Errorf("streaks at Backoff %v, want 1 2 3", streaks)
	}
}

func TestRestartLimitMovesToFailed(t *testing.T) {
	spec := agentSpec(t, "-exit", "2", "-after", "5ms")
	spec.Restart.MaxRestarts = 3
	spec.Restart.RestartWindow = config.Duration(time.Minute)
	spec.Restart.RetryFailedAfter = config.Duration(-1)
	p := newProcess(t, spec)
	rec := record(t, p)
	err := p.Start(ctxTimeout(t, 10*time.Second))
	if !errors.Is(err, ErrStartFailed) {
		t.Fatalf("Start: %v, want ErrStartFailed once the limit is reached", err)
	}
	ev := rec.waitState(t, 5*time.Second, Failed)
	if ev.Reason != ReasonRestartLimit || ev.Status.Restarts != 3 {
		t.Fatalf("failed event %v with %d restarts, want restart limit after 3", ev, ev.Status.Restarts)
	}
	if len(ev.Exits) != 4 || ev.Exits[3].Code != 2 {
		t.Fatalf("failed event carries exits %+v, want the 4 runs with code 2", ev.Exits)
	}
	st, _ := p.Wait(ctxTimeout(t, time.Second))
	if st.State != Failed || !st.NextRestartAt.IsZero() {
		t.Fatalf("status %+v, want Failed with no retry pending", st)
	}
}

func TestFailedRetriesAfterRetryFailedAfter(t *testing.T) {
	spec := agentSpec(t, "-exit", "2", "-after", "5ms")
	spec.Restart.MaxRestarts = 1
	spec.Restart.RetryFailedAfter = config.Duration(200 * time.Millisecond)
	p := newProcess(t, spec)
	rec := record(t, p)
	p.Start(ctxTimeout(t, 5*time.Second))
	failed := rec.waitState(t, 5*time.Second, Failed)
	retried := rec.waitFor(t, 5*time.Second, "retry", func(e Event) bool { return e.Reason == ReasonRetryFailed })
	// The retry is due RetryFailedAfter from the moment Failed was
	// decided (NextRestartAt), which is a little before the Failed event
	// is stamped: measured from the stamp, the gap can fall short by that.
	due := failed.Status.NextRestartAt
	if wait := due.Sub(failed.Status.LastExit.Time); wait < 200*time.Millisecond {
		t.Fatalf("retry due %v after the exit that failed it, want >= 200ms", wait)
	}
	if retried.Time.Before(due) {
		t.Fatalf("retried at %v, before it was due at %v", retried.Time, due)
	}
	if retried.Status.Streak != 0 {
		t.Fatalf("retry kept streak %d, want counters cleared", retried.Status.Streak)
	}
	rec.waitFor(t, 5*time.Second, "start after retry", func(e Event) bool { return e.To == Starting && e.Time.After(retried.Time) })
}

func TestStableRunResetsStreak(t *testing.T) {
	spec := agentSpec(t, "-exit", "1", "-after", "250ms")
	spec.Restart.ResetAfter = config.Duration(100 * time.Millisecond)
	spec.Restart.Backoff = backoff.Constant(5 * time.Second) // would show if the streak grew
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 5*time.Second, "third run", func(e Event) bool { return e.To == Running && e.Status.Restarts == 2 })
	for _, e := range rec.snapshot() {
		if e.To == Backoff && (e.Status.Streak != 1 || e.Status.NextRestartAt.After(e.Status.LastExit.Time)) {
			t.Fatalf("backoff after a stable run: streak %d, next restart %v after exit, want 1 and immediate",
				e.Status.Streak, e.Status.NextRestartAt.Sub(e.Status.LastExit.Time))
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		name    string
		policy  RestartPolicy
		code    string
		success []int
		prevent []int
		want    State
		wantWhy Reason
	}{
		{"never after failure", RestartNever, "1", nil, nil, Exited, ReasonExited},
		{"on-failure after success", RestartOnFailure, "0", nil, nil, Exited, ReasonExited},
		{"on-failure after listed success code", RestartOnFailure, "3", []int{3}, nil, Exited, ReasonExited},
		{"on-failure after failure", RestartOnFailure, "4", []int{3}, nil, Backoff, ReasonExited},
		{"always after success", RestartAlways, "0", nil, nil, Backoff, ReasonExited},
		{"prevent code wins over always", RestartAlways, "125", nil, []int{125}, Failed, ReasonPreventExitCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := agentSpec(t, "-exit", tt.code, "-after", "100ms")
			spec.Restart.Policy = tt.policy
			spec.Restart.SuccessExitCodes = tt.success
			spec.Restart.PreventExitCodes = tt.prevent
			spec.Restart.RetryFailedAfter = config.Duration(-1)
			spec.Restart.Backoff = backoff.Constant(time.Hour)
			p := newProcess(t, spec)
			rec := record(t, p)
			if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			ev := rec.waitFor(t, 5*time.Second, "after the exit", func(e Event) bool { return e.From == Running })
			if ev.To != tt.want || ev.Reason != tt.wantWhy {
				t.Fatalf("after exit %s: %v, want to %v (%v)", tt.code, ev, tt.want, tt.wantWhy)
			}
		})
	}
}

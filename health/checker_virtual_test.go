package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/tend-dev/tend/config"
)

// The Checker's schedule in virtual time: the initial delay, the interval,
// the failure threshold, the action and the grace after it, exactly.
func TestCheckerScheduleInVirtualTime(t *testing.T) {
	const s = time.Second
	cases := []struct {
		name        string
		keepFailing bool // the action does not heal the agent
		wantChecks  []time.Duration
		wantActions []time.Duration
	}{
		// Failing from 30s: checks at 35, 45, 55 fail; the action runs at 55
		// for 2s; the grace of 30s runs from its end.
		{"healed", false, []time.Duration{5 * s, 15 * s, 25 * s, 35 * s, 45 * s, 55 * s, 87 * s, 97 * s, 107 * s, 117 * s}, []time.Duration{55 * s}},
		{"still failing", true, []time.Duration{5 * s, 15 * s, 25 * s, 35 * s, 45 * s, 55 * s, 87 * s, 97 * s, 107 * s}, []time.Duration{55 * s, 107 * s}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				begin := time.Now()
				var mu sync.Mutex
				var checks, actions []time.Duration
				healed := false
				probe := ProbeFunc(func(context.Context) error {
					mu.Lock()
					defer mu.Unlock()
					at := time.Since(begin)
					checks = append(checks, at)
					if at >= 30*s && !healed {
						return errors.New("down")
					}
					return nil
				})
				cfg := Config{InitialDelay: config.Duration(5 * s), Interval: config.Duration(10 * s), Timeout: config.Duration(s),
					FailureThreshold: 3, SuccessThreshold: 2, Grace: config.Duration(30 * s)}
				checker, err := NewChecker(cfg, Subject{Unhealthy: func(context.Context, uint64, string) error {
					mu.Lock()
					actions = append(actions, time.Since(begin))
					healed = !c.keepFailing
					mu.Unlock()
					time.Sleep(2 * s) // a restart takes time
					return nil
				}}, Check{Name: "p", Probe: probe})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 120*s)
				defer cancel()
				checker.Run(ctx)
				if !slices.Equal(checks, c.wantChecks) || !slices.Equal(actions, c.wantActions) {
					t.Fatalf("checks at %v, actions at %v; want %v and %v", checks, actions, c.wantChecks, c.wantActions)
				}
			})
		})
	}
}

// A probe that hangs is cut off at Timeout, and counts as a failure then.
func TestCheckerTimeoutInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		hang := ProbeFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		checker, err := NewChecker(Config{Interval: config.Duration(10 * time.Second), Timeout: config.Duration(time.Second)},
			Subject{}, Check{Name: "hang", Probe: hang})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		checker.Run(ctx)
		p := checker.Report().Probes[0]
		if p.Failures != 3 || p.Healthy || p.LastCheck.Sub(begin) != 21*time.Second {
			t.Fatalf("probe report %+v: want 3 failures, unhealthy, the last check ended at 21s", p)
		}
	})
}

// With a Subject the Checker judges only a Running run: before it, the
// agent is reported not applicable (and not healthy) and nothing is
// probed; each verdict names its run; a new run is judged afresh after
// Grace.
func TestCheckerFollowsRuns(t *testing.T) {
	const s = time.Second
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		var mu sync.Mutex
		var probes []time.Duration
		var verdicts []string
		var lastVerdict time.Duration = -1
		subject := Subject{
			Run: func() (uint64, bool) {
				mu.Lock()
				defer mu.Unlock()
				at := time.Since(begin)
				switch {
				case at < 20*s: // starting
					return 1, false
				case lastVerdict < 0:
					return 1, true
				case at < lastVerdict+10*s: // stopping, backing off, starting
					return uint64(len(verdicts)), false
				}
				return uint64(len(verdicts)) + 1, true
			},
			Unhealthy: func(_ context.Context, run uint64, reason string) error {
				mu.Lock()
				defer mu.Unlock()
				lastVerdict = time.Since(begin)
				verdicts = append(verdicts, fmt.Sprintf("%v run %d: %s", lastVerdict, run, reason))
				return nil
			},
		}
		probe := ProbeFunc(func(context.Context) error {
			mu.Lock()
			probes = append(probes, time.Since(begin))
			mu.Unlock()
			return errors.New("refused")
		})
		checker, err := NewChecker(Config{Interval: config.Duration(10 * s), Timeout: config.Duration(s),
			FailureThreshold: 1, Grace: config.Duration(30 * s)}, subject, Check{Name: "http", Probe: probe})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 85*s)
		defer cancel()
		go func() {
			time.Sleep(15 * s)
			if r := checker.Report(); r.Applicable || r.Healthy {
				t.Errorf("report of a starting agent: %+v, want not applicable and not healthy", r)
			}
		}()
		checker.Run(ctx)
		wantVerdicts := []string{"20s run 1: http: refused", "1m20s run 2: http: refused"}
		if !slices.Equal(probes, []time.Duration{20 * s, 80 * s}) || !slices.Equal(verdicts, wantVerdicts) {
			t.Fatalf("probes at %v, verdicts %q; want [20s 1m20s] and %q", probes, verdicts, wantVerdicts)
		}
	})
}

// The totals per probe, in virtual time: every check counted, the failed
// ones apart, and the time they took (each probe sleeps 200ms, the
// failing ones 700ms); a Checker whose agent is not running checks
// nothing and logs nothing, however many ticks go by.
func TestProbeTotalsAndSilenceWhileStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		n, running := 0, true
		probe := ProbeFunc(func(context.Context) error {
			mu.Lock()
			n++
			fail := n%3 == 0
			mu.Unlock()
			if fail {
				time.Sleep(700 * time.Millisecond)
				return errors.New("slow and wrong")
			}
			time.Sleep(200 * time.Millisecond)
			return nil
		})
		lines := 0
		log := funcr.New(func(string, string) { mu.Lock(); lines++; mu.Unlock() }, funcr.Options{Verbosity: 9})
		cfg := Config{InitialDelay: config.Duration(time.Second), Interval: config.Duration(time.Second), Timeout: config.Duration(900 * time.Millisecond),
			FailureThreshold: 5, SuccessThreshold: 1}
		checker, err := NewChecker(cfg, Subject{
			Run:       func() (uint64, bool) { mu.Lock(); defer mu.Unlock(); return 1, running },
			Unhealthy: func(context.Context, uint64, string) error { return nil },
		}, Check{Name: "p", Probe: probe})
		if err != nil {
			t.Fatal(err)
		}
		checker.WithLogger(log)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { checker.Run(ctx); close(done) }()
		time.Sleep(9*time.Second + 900*time.Millisecond) // checks at 1s..9s, all ended
		got := checker.Report().Probes[0]
		if got.Checks != 9 || got.CheckFailures != 3 || got.CheckTime != 6*200*time.Millisecond+3*700*time.Millisecond {
			t.Fatalf("totals %d checks, %d failed, %v in all; want 9, 3, 3.3s", got.Checks, got.CheckFailures, got.CheckTime)
		}
		if got.LastDuration != 700*time.Millisecond {
			t.Fatalf("last check took %v, want 700ms (the 9th fails)", got.LastDuration)
		}
		mu.Lock()
		running, lines = false, 0
		mu.Unlock()
		time.Sleep(time.Hour)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if lines != 0 || n != 9 {
			t.Fatalf("stopped for an hour: %d lines logged, %d checks in all (want 0 and still 9)", lines, n)
		}
		cancel()
		<-done
	})
}

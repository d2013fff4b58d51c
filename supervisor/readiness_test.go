package supervisor

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// With a Ready probe, Start returns once the probe passes, not after
// StartSeconds, and nothing polls after that.
func TestReadyProbeIsTheStartCriterion(t *testing.T) {
	marker := tempFile(t, "ready")
	spec := agentSpec(t, "-pidfile", marker)
	spec.StartSeconds = config.Duration(time.Hour) // would block Start if used
	calls := 0
	spec.Ready = func(ctx context.Context) error {
		calls++
		_, err := os.Stat(marker)
		return err
	}
	p := newProcess(t, spec)
	begin := time.Now()
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("Start took %v", took)
	}
	if _, err := os.Stat(marker); err != nil || p.Status().State != Running {
		t.Fatalf("Running before the probe could pass: %v, %+v", err, p.Status())
	}
	after := calls
	time.Sleep(300 * time.Millisecond)
	if calls != after {
		t.Fatalf("the probe was called %d more times while Running", calls-after)
	}
}

// A child that never gets ready is killed at StartTimeout and the run
// counts as failed.
func TestReadyProbeStartTimeout(t *testing.T) {
	spec := agentSpec(t)
	spec.Ready = func(ctx context.Context) error { return errors.New("not yet") }
	spec.StartTimeout = config.Duration(200 * time.Millisecond)
	spec.Restart.MaxRestarts = 1
	spec.Restart.RetryFailedAfter = -1
	p := newProcess(t, spec)
	rec := record(t, p)
	err := p.Start(ctxTimeout(t, 10*time.Second))
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "start timeout") {
		t.Fatalf("Start: %v, want ErrStartFailed for a start timeout", err)
	}
	ev := rec.waitState(t, 5*time.Second, Failed)
	if ev.Status.Restarts != 1 || len(ev.Exits) != 2 || !strings.HasPrefix(ev.Exits[0].Err, "start timeout") {
		t.Fatalf("failed after %d restarts with exits %+v", ev.Status.Restarts, ev.Exits)
	}
	for _, e := range ev.Exits {
		if e.Ran < 150*time.Millisecond || e.Ran > 3*time.Second {
			t.Fatalf("a run lasted %v, want about the 200ms start timeout", e.Ran)
		}
	}
}

package health_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
)

// A Checker turns a failing probe into one verdict for its Subject (here
// a stand-in for a supervisor.Process: health.Subject{Run: p.CurrentRun,
// Unhealthy: p.Unhealthy}), then gives the agent time.
func ExampleChecker() {
	var broken atomic.Bool
	broken.Store(true)
	restarted := make(chan struct{})
	checker, err := health.NewChecker(health.Config{
		Interval:         config.Duration(10 * time.Millisecond),
		Timeout:          config.Duration(5 * time.Millisecond),
		FailureThreshold: 3,
	}, health.Subject{
		Run: func() (uint64, bool) { return 1, true }, // run 1, Running
		Unhealthy: func(_ context.Context, run uint64, reason string) error {
			fmt.Printf("run %d unhealthy: %s\n", run, reason)
			broken.Store(false) // the supervisor's restart heals it
			close(restarted)
			return nil
		},
	}, health.Check{Name: "api", Probe: health.ProbeFunc(func(context.Context) error {
		if broken.Load() {
			return errors.New("connection refused")
		}
		return nil
	})})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { checker.Run(ctx); close(done) }()
	<-restarted
	cancel()
	<-done
	fmt.Println("verdicts:", checker.Report().Verdicts)
	// Output:
	// run 1 unhealthy: api: connection refused
	// verdicts: 1
}

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

// A Checker turns a failing probe into one call of the host's action (here
// a stand-in for the supervisor's Restart), then gives the agent time.
func ExampleChecker() {
	var broken atomic.Bool
	broken.Store(true)
	restarted := make(chan struct{})
	checker, err := health.NewChecker(health.Config{
		Interval:         config.Duration(10 * time.Millisecond),
		Timeout:          config.Duration(5 * time.Millisecond),
		FailureThreshold: 3,
	}, func(ctx context.Context, r health.Report) {
		fmt.Println("restarting: healthy =", r.Healthy, "failures =", r.Probes[0].Failures)
		broken.Store(false)
		close(restarted)
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
	fmt.Println("actions:", checker.Report().Actions)
	// Output:
	// restarting: healthy = false failures = 3
	// actions: 1
}

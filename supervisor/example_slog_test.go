package supervisor_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/supervisor"
)

// A host that logs with log/slog passes its handler through logr's
// bridge: tend writes one line per transition at its level (a crash is a
// warning, giving up an error), with the agent, the reason and the exit.
// Here the time, PID and run time are left out so that the output is
// the same on every run.
func ExampleGroupOptions_slog() {
	handler := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "pid" || a.Key == "ran" {
				return slog.Attr{}
			}
			return a
		}})
	g, err := supervisor.NewGroup(supervisor.GroupOptions{
		Logger:      logr.FromSlogHandler(handler),
		Containment: supervisor.Containment{Disabled: true},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer g.Close(ctx)
	p, err := g.Add(supervisor.Spec{Name: "flaky", Path: "/bin/sh", Args: []string{"-c", "exit 3"},
		Restart: supervisor.RestartSpec{Policy: supervisor.RestartNever}})
	if err != nil {
		panic(err)
	}
	p.Start(ctx) //nolint:errcheck // it exits at once
	p.Wait(ctx)  //nolint:errcheck // until it has
	// Output:
	// level=INFO msg="agent starting" agent=flaky from=stopped to=starting reason="start requested"
	// level=WARN msg="agent exited" agent=flaky from=starting to=exited reason=exited exit="exit code 3"
}

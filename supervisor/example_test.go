package supervisor_test

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/supervisor"
)

// Supervise a program that crashes: the Process restarts it and reports each
// transition; Stop ends it for good.
func Example() {
	sh, err := exec.LookPath("sh")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := supervisor.New(supervisor.Spec{
		Name:         "flaky",
		Path:         sh,
		Args:         []string{"-c", "sleep 0.2; exit 3"},
		StartSeconds: config.Duration(100 * time.Millisecond),
		Restart:      supervisor.RestartSpec{Policy: supervisor.RestartOnFailure},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	restarted, stopped := make(chan struct{}), make(chan struct{})
	cancel := p.Subscribe(func(e supervisor.Event) {
		fmt.Println(e)
		switch {
		case e.To == supervisor.Running && e.Status.Restarts == 1:
			close(restarted)
		case e.To == supervisor.Stopped:
			close(stopped)
		}
	})
	defer cancel()

	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	<-restarted
	if err := p.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	<-stopped // events arrive on the subscriber's own goroutine
	// Output:
	// agent "flaky": stopped -> starting (start requested)
	// agent "flaky": starting -> running (ready)
	// agent "flaky": running -> backoff (exited: exit code 3)
	// agent "flaky": backoff -> starting (backoff elapsed)
	// agent "flaky": starting -> running (ready)
	// agent "flaky": running -> stopping (stop requested)
	// agent "flaky": stopping -> stopped (stopped: killed by SIGTERM)
}

// New reports bad input before anything runs, naming the key at fault.
func ExampleNew() {
	_, err := supervisor.New(supervisor.Spec{Name: "exporter", Path: "/nonexistent/node_exporter"})
	fmt.Println(err)
	// Output: agent "exporter": field "binary_path" = /nonexistent/node_exporter: does not exist
}

// A Group reconciles to the agents a config file lists: Apply starts the
// new, restarts the changed, removes the dropped and says what it did.
func ExampleGroup_Apply() {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := supervisor.NewGroup(supervisor.GroupOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer g.Close(ctx)
	agent := func(name, arg string) supervisor.Spec {
		return supervisor.Spec{Name: name, Path: sleep, Args: []string{arg},
			StartSeconds: config.Duration(10 * time.Millisecond)}
	}

	res, err := g.Apply(ctx, []supervisor.Spec{agent("metrics", "100"), agent("logs", "100")})
	fmt.Printf("%+v %v\n", res, err)
	res, err = g.Apply(ctx, []supervisor.Spec{agent("metrics", "100"), agent("logs", "200"), agent("exporter", "100")})
	fmt.Printf("%+v %v\n", res, err)
	for _, st := range g.List() {
		fmt.Println(st.Name, st.State)
	}
	// Output:
	// {Added:[logs metrics] Removed:[] Restarted:[] Updated:[] Unchanged:[] Resumed:[]} <nil>
	// {Added:[exporter] Removed:[] Restarted:[logs] Updated:[] Unchanged:[metrics] Resumed:[]} <nil>
	// exporter running
	// logs running
	// metrics running
}

// A one-shot setup task, an agent that needs it completed, and a scheduled
// task: Apply returns once the setup has completed and the collector is
// ready, while the scheduled task waits for its first run.
func ExampleSpec_dependsOn() {
	sh, err := exec.LookPath("sh")
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := supervisor.NewGroup(supervisor.GroupOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer g.Close(ctx)
	specs := []supervisor.Spec{
		{Name: "setup", Path: sh, Args: []string{"-c", "exit 0"}, Task: &supervisor.TaskSpec{Timeout: config.Duration(time.Minute)}},
		{Name: "collector", Path: sh, Args: []string{"-c", "exec sleep 100"}, StartSeconds: config.Duration(10 * time.Millisecond),
			DependsOn: map[string]supervisor.Dependency{"setup": {Condition: supervisor.ConditionCompletedSuccessfully}}},
		{Name: "inventory", Path: sh, Args: []string{"-c", "exit 0"}, Task: &supervisor.TaskSpec{Schedule: "@hourly"}},
	}
	if _, err := g.Apply(ctx, specs); err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range g.List() {
		fmt.Println(st.Name, st.State, !st.NextRunAt.IsZero())
	}
	// Output:
	// collector running false
	// inventory waiting true
	// setup completed false
}

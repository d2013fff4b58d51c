package tend_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/supervisor"
)

// A host wired as the README shows, with a disabled agent, a crash-looping
// one and one that hangs (SIGSTOPped: alive, not answering): only the hung
// one is restarted, once, counted, with the verdict on its exit; the
// disabled one is never started and the crash-looping one ends Failed by
// its own restart limit, neither judged healthy nor given a verdict.
func TestReadmeHealthWiring(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	off := false
	specs := []supervisor.Spec{
		{Name: "disabled", Path: agentPath, Enabled: &off},
		{Name: "crashloop", Path: agentPath, Args: []string{"-after", "20ms", "-exit", "1"},
			StartSeconds: config.Duration(time.Second),
			Restart:      supervisor.RestartSpec{MaxRestarts: 3, Backoff: backoff.Constant(50 * time.Millisecond)}},
		{Name: "hung", Path: agentPath, Args: []string{"-sd-serve", "-sd-own-port", addr}, NotifyReady: true,
			StopTimeout: config.Duration(2 * time.Second)},
	}
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer g.Close(context.Background()) //nolint:errcheck // the test's own cleanup
	if _, err := g.Apply(ctx, specs); err != nil && !strings.Contains(err.Error(), "crashloop") {
		t.Fatalf("Apply: %v", err)
	}
	probes := map[string]health.Probe{
		"disabled":  health.ProbeFunc(func(context.Context) error { return nil }),
		"crashloop": health.ProbeFunc(func(context.Context) error { return nil }),
		"hung":      health.HTTPGet("http://" + addr + "/"),
	}
	checkers := map[string]*health.Checker{}
	done := make(chan struct{})
	for name, probe := range probes {
		p, _ := g.Get(name)
		c, err := health.NewChecker(health.Config{Interval: config.Duration(50 * time.Millisecond),
			Timeout: config.Duration(20 * time.Millisecond), FailureThreshold: 2, Grace: config.Duration(500 * time.Millisecond)},
			health.Subject{Run: p.CurrentRun, Unhealthy: p.Unhealthy, Healthy: p.Healthy},
			health.Check{Name: "probe", Probe: probe})
		if err != nil {
			t.Fatal(err)
		}
		checkers[name] = c
		go func() { c.Run(ctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range probes {
			<-done
		}
	}()

	hung, _ := g.Get("hung")
	pid := hung.Status().PID
	syscall.Kill(pid, syscall.SIGSTOP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := hung.Status()
		if st.State == supervisor.Running && st.PID != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hung agent was not restarted: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := probes["hung"].Check(ctx); err != nil {
		t.Fatalf("the restarted agent does not answer: %v", err)
	}
	st := hung.Status()
	if st.Restarts != 1 || !strings.HasPrefix(st.LastExit.Err, "unhealthy: probe:") || checkers["hung"].Report().Verdicts != 1 {
		t.Fatalf("hung agent after its restart: %+v, verdicts %d", st, checkers["hung"].Report().Verdicts)
	}
	crash, _ := g.Get("crashloop")
	for crash.Status().State != supervisor.Failed && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for name, want := range map[string]supervisor.State{"disabled": supervisor.Stopped, "crashloop": supervisor.Failed} {
		p, _ := g.Get(name)
		r := checkers[name].Report()
		if st := p.Status(); st.State != want || r.Healthy || r.Applicable || r.Verdicts != 0 {
			t.Errorf("%s: state %v, report %+v; want %v, not applicable, no verdict", name, st.State, r, want)
		}
	}
	if p, _ := g.Get("disabled"); p.Status().Run != 0 {
		t.Errorf("the disabled agent was started: %+v", p.Status())
	}
	if p, _ := g.Get("crashloop"); p.Status().Restarts != 3 {
		t.Errorf("crashloop restarts %d, want its own limit of 3", p.Status().Restarts)
	}
}

// A dependency's "healthy" condition is met by the Checker the host
// attaches to it: the dependent waits while the probe fails, and starts
// once the Checker proves the dependency's run healthy.
func TestHealthyConditionFollowsTheChecker(t *testing.T) {
	var healthyNow atomic.Bool
	checker := supervisor.Attachment{Name: "health", Open: func(ctx context.Context, p *supervisor.Process) (func(), error) {
		c, err := health.NewChecker(health.Config{Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(10 * time.Millisecond), Grace: config.Duration(20 * time.Millisecond), FailureThreshold: 1000},
			health.Subject{Run: p.CurrentRun, Unhealthy: p.Unhealthy, Healthy: p.Healthy},
			health.Check{Name: "db", Probe: health.ProbeFunc(func(context.Context) error {
				if !healthyNow.Load() {
					return errors.New("not accepting connections yet")
				}
				return nil
			})})
		if err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		return func() { <-done }, nil
	}}
	specs := []supervisor.Spec{
		{Name: "db", Path: agentPath, StartSeconds: config.Duration(50 * time.Millisecond), Attach: []supervisor.Attachment{checker}},
		{Name: "app", Path: agentPath, DependsOn: map[string]supervisor.Dependency{"db": {Condition: supervisor.ConditionHealthy}}},
	}
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Logger: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background()) //nolint:errcheck // the test's own cleanup
	if _, err := g.Launch(context.Background(), specs); err != nil {
		t.Fatal(err)
	}
	db, _ := g.Get("db")
	app, _ := g.Get("app")
	waitUntil(t, "db running", func() bool { return db.Status().State == supervisor.Running })
	time.Sleep(200 * time.Millisecond) // several probe failures: the app must still wait
	if st := app.Status(); st.State != supervisor.Waiting || !strings.Contains(st.WaitingFor, "db (healthy): running") || db.Status().Healthy {
		t.Fatalf("app %v waiting for %q, db healthy %v; want the app waiting for an unproven db", st.State, st.WaitingFor, db.Status().Healthy)
	}
	healthyNow.Store(true)
	waitUntil(t, "app running", func() bool { return app.Status().State == supervisor.Running })
	if !db.Status().Healthy {
		t.Fatal("the app started but the db is not marked healthy")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

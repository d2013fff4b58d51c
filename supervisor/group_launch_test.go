package supervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// Launch returns with its work handed out, not done: a crash-looping agent
// and one that never becomes ready do not hold it up. WaitReady then says
// for each what became of it: the crash loop's cause from its crash tail,
// the other still starting at the deadline.
func TestLaunchDoesNotWait(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	crash := agentSpec(t, "-after", "200ms", "-exit", "1", "-stderr-lines", "1", "-text", "listen tcp :9100: bind: address already in use")
	crash.Name = "crashloop"
	crash.StartSeconds = config.Duration(time.Second)
	crash.Restart.MaxRestarts = 2
	slow := agentSpec(t)
	slow.Name, slow.NotifyReady, slow.StartTimeout = "never-ready", true, config.Duration(time.Hour)
	good := agentSpec(t)
	good.Name = "good"
	res, err := g.Launch(context.Background(), []Spec{crash, slow, good})
	if err != nil || len(res.Added) != 3 {
		t.Fatalf("Launch: %+v, %v", res, err)
	}
	for _, name := range []string{"crashloop", "never-ready"} {
		if p, _ := g.Get(name); p.Status().State == Running || p.Status().State == Failed {
			t.Fatalf("Launch waited for %s: %+v", name, p.Status())
		}
	}
	if err := g.WaitReady(ctxTimeout(t, 10*time.Second), "good"); err != nil {
		t.Fatalf("WaitReady(good): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = g.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrStartFailed) ||
		!strings.Contains(err.Error(), `agent "never-ready": start failed: starting`) ||
		!strings.Contains(err.Error(), `agent "crashloop": start failed: failed after exit code 1: listen tcp :9100: bind: address already in use`) {
		t.Fatalf("WaitReady: %v", err)
	}
	if strings.Contains(err.Error(), `"good"`) {
		t.Fatalf("WaitReady names a ready agent: %v", err)
	}
}

// Start's error names the cause from the crash tail, not only the code.
func TestStartFailureNamesTheCause(t *testing.T) {
	spec := agentSpec(t, "-after", "10ms", "-exit", "1", "-stderr-lines", "1", "-text", "bind: address already in use")
	spec.StartSeconds = config.Duration(time.Second)
	spec.Restart.Policy = RestartNever
	err := newProcess(t, spec).Start(ctxTimeout(t, 10*time.Second))
	if !errors.Is(err, ErrStartFailed) || !strings.HasSuffix(err.Error(), "exit code 1: bind: address already in use err 1") {
		t.Fatalf("Start: %v", err)
	}
}

// A bad set is rejected as a whole, with ErrRejected, by Launch and Apply
// alike; nothing is changed.
func TestLaunchRejectsBadConfig(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	good, bad := agentSpec(t), agentSpec(t)
	good.Name, bad.Name, bad.Path = "good", "bad", "/nonexistent"
	for _, reconcile := range []func(context.Context, []Spec) (ApplyResult, error){g.Launch, g.Apply} {
		_, err := reconcile(context.Background(), []Spec{good, bad})
		if !errors.Is(err, ErrRejected) || errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), `agent "bad"`) {
			t.Fatalf("reconcile: %v, want ErrRejected naming the bad agent", err)
		}
		if len(g.List()) != 0 {
			t.Fatalf("a rejected set changed the Group: %v", g.List())
		}
	}
}

// An agent removed by one Launch and listed again by the next is not
// started beside its predecessor: the second Launch waits for the
// removal, and one child runs in the end.
func TestLaunchRemoveThenReAdd(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t, "-term-delay", "300ms")
	spec.Name = "a"
	if _, err := g.Launch(context.Background(), []Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if err := g.WaitReady(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	first, _ := g.Get("a")
	oldPID := first.Status().PID
	if res, err := g.Launch(context.Background(), nil); err != nil || len(res.Removed) != 1 {
		t.Fatalf("remove: %+v, %v", res, err)
	}
	if _, err := g.Launch(context.Background(), []Spec{spec}); err != nil {
		t.Fatal(err)
	}
	if alive(oldPID) {
		t.Fatalf("the re-added agent's Launch returned while its predecessor %d still runs", oldPID)
	}
	if err := g.WaitReady(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if p, _ := g.Get("a"); p == first || p.Status().State != Running {
		t.Fatalf("after re-adding: %+v", p.Status())
	}
}

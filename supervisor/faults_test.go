package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// A binary that disappears while restarts are immediate and unlimited must
// not trap the owner goroutine in spawn attempts: Stop is still served.
func TestMissingBinaryWithZeroBackoffStaysStoppable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "agent")
	copyFile(t, agentPath, bin, 0o755)
	spec := agentSpec(t, "-after", "300ms", "-exit", "1")
	spec.Path = bin
	spec.Restart = RestartSpec{Backoff: backoff.None(), MaxRestarts: -1}
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(bin); err != nil { // as a package upgrade does
		t.Fatal(err)
	}
	rec.waitFor(t, 5*time.Second, "a spawn failure", func(e Event) bool { return e.Reason == ReasonSpawnFailed })
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop not served 10s after spawn failures began: the owner goroutine is stuck retrying")
	}
	if st := p.Status(); st.State != Stopped {
		t.Fatalf("state after Stop = %v, want Stopped", st.State)
	}
}

// A child whose streams have no writer and no crash tail still gets fds 1
// and 2, on /dev/null, so the first file it opens is not its stdout.
func TestUnwrittenStreamsAreDevNull(t *testing.T) {
	spec := agentSpec(t)
	spec.Path, spec.Args = "/bin/sleep", []string{"60"} // a Go agent would reopen closed fds itself
	spec.TailBytes = -1
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for fd := 0; fd <= 2; fd++ {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", p.Status().PID, fd))
		if err != nil || target != os.DevNull {
			t.Errorf("child's fd %d is %q (%v), want %s", fd, target, err, os.DevNull)
		}
	}
}

// Each running agent costs the host one pidfd, not two.
func TestOnePidfdPerAgent(t *testing.T) {
	before := countPidfds(t)
	const n = 5
	for i := range n {
		spec := agentSpec(t)
		spec.Name += strconv.Itoa(i)
		p := newProcess(t, spec)
		if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if got := countPidfds(t) - before; got != n {
		t.Fatalf("%d pidfds held for %d running agents, want %d", got, n, n)
	}
}

func countPidfds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "anon_inode:[pidfd]" {
			n++
		}
	}
	return n
}

// escapedHolder returns sh arguments that leave a descendant in a session
// of its own holding the agent's stdout, then run script; the test kills
// the descendant at cleanup.
func escapedHolder(t *testing.T, script string) []string {
	t.Helper()
	pidFile := filepath.Join(t.TempDir(), "holder.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return []string{"-c", fmt.Sprintf(`setsid sh -c 'echo $$ > %s; exec sleep 60' & until [ -s %s ]; do :; done; %s`, pidFile, pidFile, script)}
}

// A child that dies while an escaped descendant keeps its output pipe is
// seen dead at once: Start reports the failure, not a Running child.
func TestExitSeenWhileEscapedDescendantHoldsPipe(t *testing.T) {
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = escapedHolder(t, "echo dying; exit 3")
	spec.StartSeconds = config.Duration(500 * time.Millisecond)
	spec.Restart.Policy = RestartNever
	p := newProcess(t, spec)
	err := p.Start(ctxTimeout(t, 10*time.Second))
	if !errors.Is(err, ErrStartFailed) {
		t.Fatalf("Start = %v, want ErrStartFailed for a child that exited with 3", err)
	}
	st := p.Status()
	if st.State != Exited || st.PID != 0 || st.LastExit == nil || st.LastExit.Code != 3 || st.LastExit.Requested {
		t.Fatalf("status = %+v, last exit %+v; want Exited, no PID, unrequested exit 3", st, st.LastExit)
	}
	if !strings.Contains(st.LastExit.Tail, "dying") {
		t.Fatalf("crash tail %q lacks the child's last line", st.LastExit.Tail)
	}
}

// Stop keeps its deadline even when an escaped descendant keeps the pipe.
func TestStopKeepsDeadlineWithEscapedDescendant(t *testing.T) {
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = escapedHolder(t, "exec sleep 60")
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	const deadline = time.Second
	begin := time.Now()
	if err := p.Stop(ctxTimeout(t, deadline)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(begin); took > deadline {
		t.Fatalf("Stop took %v, past its %v deadline", took, deadline)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// Turning the watchdog off is a change of the child's contract (it was
// told WATCHDOG_USEC): the agent gets a new child, and the running child
// is never judged by a watchdog it was not started with.
func TestApplyWatchdogOffRestartsWithoutKilling(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	spec := groupSpec(t, "dog", "-notify-ready-after", "0s", "-watchdog-every", "50ms")
	spec.NotifyReady = true
	spec.Watchdog = config.Duration(500 * time.Millisecond)
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	spec.Watchdog = 0
	res, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec})
	if err != nil || !slices.Equal(res.Restarted, []string{"dog"}) {
		t.Fatalf("Apply = %+v, %v; want dog restarted", res, err)
	}
	time.Sleep(time.Second) // two former watchdog periods
	for _, e := range rec.snapshot() {
		if x := e.Status.LastExit; x != nil && !x.Requested {
			t.Fatalf("unrequested exit %+v after the watchdog was turned off", x)
		}
	}
	if st := p.Status(); st.State != Running {
		t.Fatalf("state %v, want Running", st.State)
	}
}

// StopAll keeps its deadline, final Store writes included, for agents that
// must be SIGKILLed at the end of it, and leaves every final state stored.
func TestStopAllWithStoreKeepsDeadline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	store, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, GroupOptions{Store: store})
	const n = 50
	for i := range n {
		spec := groupSpec(t, fmt.Sprintf("a%02d", i), "-ignore-term")
		spec.StopTimeout = config.Duration(30 * time.Second)
		if _, err := g.Add(spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.StartAll(ctxTimeout(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	// StopAll keeps a tenth of the deadline (400 ms here) for the kill, the
	// reap and the write of 50 agents; the bound gives the kernel that much
	// again, so a loaded machine that is slow to schedule them does not fail
	// the test, while writes made one after another, or a stop that waits
	// out StopTimeout, still do.
	const deadline = 4 * time.Second
	begin := time.Now()
	if err := g.StopAll(ctxTimeout(t, deadline)); err != nil {
		t.Fatalf("StopAll: %v", err)
	}
	if took, bound := time.Since(begin), deadline+deadline/10; took > bound {
		t.Fatalf("StopAll took %v, past its %v deadline and the %v the kernel is given beyond it", took, deadline, bound-deadline)
	}
	reopened, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := reopened.Load()
	for _, r := range recs {
		if r.State != Stopped {
			t.Errorf("stored state of %s is %v, want Stopped", r.Name, r.State)
		}
	}
	if len(recs) != n {
		t.Fatalf("%d records stored, want %d", len(recs), n)
	}
}

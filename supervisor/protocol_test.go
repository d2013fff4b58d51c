//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/procfs"
	"github.com/tend-dev/tend/reload"
	"golang.org/x/sys/unix"
)

// shellAgent is a NotifyReady agent running script under /bin/sh, with
// systemd-notify's path as $SDN.
func shellAgent(t *testing.T, script string) Spec {
	t.Helper()
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = []string{"-c", script}
	spec.Env = []string{"SDN=" + systemdNotify(t), "PATH=/usr/bin:/bin"}
	spec.NotifyReady = true
	spec.StartTimeout = config.Duration(5 * time.Second)
	return spec
}

// A READY=1 whose sender is gone by the time it is read still counts: the
// main process execs systemd-notify, which exits at once without waiting
// (--no-block). Start must succeed every time, never hang in Starting.
func TestReadyFromAnExitedMainProcess(t *testing.T) {
	spec := shellAgent(t, `exec "$SDN" --ready --no-block --pid=$$`)
	spec.Restart.Policy = RestartNever
	p := newProcess(t, spec)
	for i := range 50 {
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if ev := rec.waitState(t, 10*time.Second, Exited); ev.Status.LastExit.Code != 0 {
			t.Fatalf("start %d: exit %v", i, ev.Status.LastExit)
		}
	}
}

// RELOADING=1 then READY=1 from systemd-notify (252 has no --reloading or
// --stopping: the assignments are what those options send) completes
// a notify-mode Reload; Status.Reloading is true in between.
func TestReloadByNotify(t *testing.T) {
	spec := shellAgent(t, `trap '"$SDN" RELOADING=1; "$SDN" --status=reloaded-$n; n=$((n+1)); sleep 0.3; "$SDN" --ready' HUP
n=1
"$SDN" --ready
while :; do sleep 0.05; done`)
	spec.ReloadMode = ReloadByNotify
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	sawReloading := make(chan bool, 1)
	cancel := p.Subscribe(func(Event) {})
	defer cancel()
	go func() {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if p.Status().Reloading {
				sawReloading <- true
				return
			}
			time.Sleep(time.Millisecond)
		}
		sawReloading <- false
	}()
	for i := 1; i <= 3; i++ {
		begin := time.Now()
		if err := p.Reload(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if took := time.Since(begin); took < 250*time.Millisecond {
			t.Fatalf("reload %d returned after %v, before the agent's READY=1 at 300ms", i, took)
		}
		st := p.Status()
		if st.Reloading || st.NotifyStatus != fmt.Sprintf("reloaded-%d", i) || st.State != Running {
			t.Fatalf("after reload %d: %+v", i, st)
		}
	}
	if !<-sawReloading {
		t.Fatal("Status.Reloading never true during a reload")
	}
}

// An agent that takes SIGHUP without reporting the reload fails a notify
// reload at the timeout, and keeps running; one that dies of it fails the
// reload, and the exit is reported as a failed reload.
func TestReloadByNotifyFailures(t *testing.T) {
	t.Run("silent", func(t *testing.T) {
		spec := shellAgent(t, `trap 'echo hup' HUP; "$SDN" --ready; while :; do sleep 0.05; done`)
		spec.ReloadMode = ReloadByNotify
		spec.StartTimeout = config.Duration(500 * time.Millisecond)
		p := newProcess(t, spec)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		err := p.Reload(ctxTimeout(t, 10*time.Second))
		if !errors.Is(err, ErrReloadFailed) || !strings.Contains(err.Error(), "within 500ms") {
			t.Fatalf("Reload: %v, want a reload timeout", err)
		}
		if st := p.Status(); st.State != Running || st.Reloading {
			t.Fatalf("after the timeout: %+v, want still Running", st)
		}
	})
	t.Run("dies", func(t *testing.T) {
		spec := shellAgent(t, `"$SDN" --ready; while :; do sleep 0.05; done`) // no trap: SIGHUP kills sh
		spec.ReloadMode = ReloadByNotify
		spec.Restart.Policy = RestartNever
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		err := p.Reload(ctxTimeout(t, 10*time.Second))
		if !errors.Is(err, ErrReloadFailed) || !strings.Contains(err.Error(), "killed by SIGHUP") {
			t.Fatalf("Reload: %v, want a failed reload naming the signal", err)
		}
		if ev := rec.waitState(t, 5*time.Second, Exited); ev.Reason != ReasonReloadFailed {
			t.Fatalf("exit reported as %q, want %q", ev.Reason, ReasonReloadFailed)
		}
	})
}

// The reload modes other than notify: signal (a collectd-like agent that
// dies of SIGHUP: its exit is a failed reload), restart (the same agent is
// restarted, which is not a crash), none (an error naming the agent).
func TestReloadModes(t *testing.T) {
	t.Run("signal", func(t *testing.T) {
		spec := agentSpec(t) // the test agent dies of SIGHUP without -hup
		spec.Restart.Policy = RestartNever
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := p.Reload(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		ev := rec.waitState(t, 5*time.Second, Exited)
		if ev.Reason != ReasonReloadFailed || ev.Status.LastExit.Signal != Signal(syscall.SIGHUP) {
			t.Fatalf("exit event %v, want a failed reload", ev)
		}
	})
	t.Run("restart", func(t *testing.T) {
		spec := agentSpec(t)
		spec.ReloadMode = ReloadByRestart
		p := newProcess(t, spec)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		before := p.Status()
		if err := p.Reload(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("Reload: %v", err)
		}
		after := p.Status()
		if after.State != Running || after.PID == before.PID || !after.LastExit.Requested || after.Streak != 0 {
			t.Fatalf("after a restart reload: %+v (before: pid %d)", after, before.PID)
		}
	})
	t.Run("none", func(t *testing.T) {
		spec := agentSpec(t)
		spec.ReloadMode = ReloadNone
		p := newProcess(t, spec)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		err := p.Reload(ctxTimeout(t, 10*time.Second))
		if !errors.Is(err, ErrReloadUnsupported) || !strings.Contains(err.Error(), spec.Name) {
			t.Fatalf("Reload: %v, want ErrReloadUnsupported naming the agent", err)
		}
	})
}

// STOPPING=1 then a clean exit is the agent's own stop, not a crash: no
// restart even under the always policy. One that says STOPPING=1 and
// stays is killed at StopTimeout, and that run failed.
func TestStoppingIsNotACrash(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		spec := shellAgent(t, `"$SDN" --ready; sleep 0.2; "$SDN" STOPPING=1; sleep 0.2; exit 0`)
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		rec.waitFor(t, 5*time.Second, "Stopping", func(e Event) bool { return e.To == Stopping && e.Reason == ReasonAgentStopping })
		ev := rec.waitState(t, 5*time.Second, Exited)
		if ev.Reason != ReasonAgentStopped || p.Status().Restarts != 0 {
			t.Fatalf("after STOPPING=1 and exit 0: %v, restarts %d", ev, p.Status().Restarts)
		}
	})
	t.Run("lingers", func(t *testing.T) {
		spec := shellAgent(t, `"$SDN" --ready; "$SDN" STOPPING=1; exec sleep 60`)
		spec.StopTimeout = config.Duration(300 * time.Millisecond)
		spec.Restart.Policy = RestartNever
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		ev := rec.waitState(t, 5*time.Second, Exited)
		if x := ev.Status.LastExit; ev.Reason != ReasonExited || !strings.HasPrefix(x.Err, "stop timeout") || x.Signal != Signal(syscall.SIGKILL) {
			t.Fatalf("exit %v, want a stop timeout", ev)
		}
	})
}

// ERRNO= and EXIT_STATUS= reach the Exit, even sent just before the end.
func TestErrnoAndExitStatusOnTheExit(t *testing.T) {
	spec := shellAgent(t, `"$SDN" --ready; "$SDN" ERRNO=98 EXIT_STATUS=3; exit 1`)
	spec.Restart.Policy = RestartNever
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	x := rec.waitState(t, 5*time.Second, Exited).Status.LastExit
	if x.Code != 1 || x.Errno != 98 || x.ExitStatus == nil || *x.ExitStatus != 3 {
		t.Fatalf("exit %+v, want code 1, errno 98, exit status 3", x)
	}
}

// WATCHDOG_USEC= changes the watchdog period of the running child: an
// agent without a Watchdog that asks for 200ms and then goes quiet is
// killed as for a missed keep-alive; asking for 0 turns it off again.
func TestWatchdogUSecFromTheAgent(t *testing.T) {
	for _, usec := range []string{"200000", "0"} {
		spec := shellAgent(t, `"$SDN" --ready WATCHDOG_USEC=200000 WATCHDOG=1; "$SDN" WATCHDOG_USEC=`+usec+`; exec sleep 60`)
		spec.Name += "-" + usec
		spec.Restart.Policy = RestartNever
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if usec == "0" {
			time.Sleep(time.Second) // the kernel's scheduling, not tend's timing: five periods
			if st := p.Status(); st.State != Running {
				t.Fatalf("watchdog turned off, yet: %+v", st)
			}
			continue
		}
		x := rec.waitState(t, 5*time.Second, Exited).Status.LastExit
		if !strings.Contains(x.Err, "no WATCHDOG=1 for 200ms") {
			t.Fatalf("exit %v, want a watchdog timeout at the agent's period", x)
		}
	}
}

// A Go agent on go-systemd (activation.Listeners, SdNotify with
// RELOADING=1 and MONOTONIC_USEC=) reloads in notify mode: each Reload
// returns once the agent has finished, and the agent keeps serving on the
// activated socket throughout.
func TestGoSystemdAgentReloads(t *testing.T) {
	port := freePort(t)
	var out lockedWriter
	spec := agentSpec(t, "-sd-serve", "-sd-reload", "100ms")
	spec.Listen = []string{fmt.Sprintf("tcp://127.0.0.1:%d", port)}
	spec.NotifyReady = true
	spec.ReloadMode = ReloadByNotify
	spec.Stdout = &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	pid := p.Status().PID
	for i := 1; i <= 5; i++ {
		begin := time.Now()
		if err := p.Reload(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if took := time.Since(begin); took < 100*time.Millisecond {
			t.Fatalf("reload %d returned after %v, before the agent's 100ms reload was over", i, took)
		}
		if body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != fmt.Sprintf("pid %d\n", pid) {
			t.Fatalf("after reload %d: %q, %v", i, body, err)
		}
	}
	waitOutput(t, &out, strings.Repeat("reloaded\n", 5))
}

// MAINPID= hands the agent to another process of its group: the leader's
// exit then ends nothing, signals and Stop reach the new main process, and
// its death is the agent's exit, with its status where the kernel keeps
// it. MAINPID= naming a process outside the group is ignored.
func TestMainPIDHandOver(t *testing.T) {
	pidFile := tempFile(t, "successor.pid")
	spec := shellAgent(t, `sleep 60 & echo $! > `+pidFile+`
"$SDN" --ready MAINPID=$!
exit 0`)
	spec.Restart.Policy = RestartNever
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	successor := readPIDs(t, pidFile, 1)[0]
	leader := rec.waitFor(t, 5*time.Second, "Starting", func(e Event) bool { return e.To == Starting }).Status.PID
	waitGone(t, leader, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().PID != successor && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := p.Status(); st.State != Running || st.PID != successor {
		t.Fatalf("after the leader's exit: %+v, want Running with the successor %d", st, successor)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	x := rec.waitState(t, 5*time.Second, Exited).Status.LastExit
	if alive(successor) {
		t.Fatalf("successor %d survives", successor)
	}
	// Who reaps the orphaned successor decides whether its status is
	// known: here PID 1 does, or does not.
	if x.Signal != Signal(syscall.SIGKILL) && !strings.Contains(x.Err, "status unknown: it was not tend's child") {
		t.Fatalf("exit %+v, want the successor's SIGKILL or an unknown status", x)
	}
	t.Logf("the successor's exit, reaped by PID 1: %v", x)

	// With the host a subreaper that reaps its orphans, the status is
	// known (pidfd exit info, Linux 6.15+).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) //nolint:errcheck // restores the test process
	rec = record(t, p)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	successor = readPIDs(t, pidFile, 1)[0]
	for deadline := time.Now().Add(5 * time.Second); p.Status().PID != successor && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st, err := procfs.ReadStat(successor); err == nil && st.PPID == os.Getpid() {
			break // orphaned to this process
		}
	}
	syscall.Kill(successor, syscall.SIGTERM)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(successor, &ws, 0, nil); err != nil {
		t.Fatalf("reap the orphaned successor: %v", err)
	}
	x = rec.waitState(t, 5*time.Second, Exited).Status.LastExit
	if x.Signal != Signal(syscall.SIGTERM) {
		if strings.Contains(x.Err, "status unknown") {
			t.Skipf("no pidfd exit info on this kernel: %v", x)
		}
		t.Fatalf("exit %+v, want the successor's SIGTERM", x)
	}

	// A stranger's PID is not taken.
	outsider := os.Getpid()
	spec = shellAgent(t, `"$SDN" --ready MAINPID=`+strconv.Itoa(outsider)+`; "$SDN" --status=after; exec sleep 60`)
	spec.Name += "-outsider"
	q := newProcess(t, spec)
	if err := q.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); q.Status().NotifyStatus != "after" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the later message: the MAINPID= one was taken before it
	}
	if pid := q.Status().PID; pid == outsider || q.Status().NotifyStatus != "after" {
		t.Fatal("MAINPID= of a process outside the group was taken")
	}
}

// EXTEND_TIMEOUT_USEC= extends the timeout in force beyond a start: the
// stop timeout after STOPPING=1, and a notify reload's timeout.
func TestExtendTimeoutWhileStoppingAndReloading(t *testing.T) {
	t.Run("stopping", func(t *testing.T) {
		spec := shellAgent(t, `"$SDN" --ready; "$SDN" STOPPING=1 EXTEND_TIMEOUT_USEC=3000000; sleep 0.8; exit 0`)
		spec.StopTimeout = config.Duration(300 * time.Millisecond)
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if ev := rec.waitState(t, 5*time.Second, Exited); ev.Reason != ReasonAgentStopped {
			t.Fatalf("%v, want a clean stop after the extended stop timeout", ev)
		}
	})
	t.Run("reloading", func(t *testing.T) {
		spec := shellAgent(t, `trap '"$SDN" RELOADING=1 EXTEND_TIMEOUT_USEC=3000000; sleep 0.8; "$SDN" --ready' HUP
"$SDN" --ready
while :; do sleep 0.05; done`)
		spec.ReloadMode = ReloadByNotify
		spec.StartTimeout = config.Duration(300 * time.Millisecond)
		p := newProcess(t, spec)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := p.Reload(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("a reload that asked for more time: %v", err)
		}
	})
}

// reload.Transaction with a notify-mode Reload as its Apply: a config the
// agent takes is confirmed by its RELOADING=1 and READY=1; one that kills
// it fails the reload, the file is rolled back and the agent runs again
// on the last good config.
func TestTransactionVerifiedByNotifyReload(t *testing.T) {
	cfgPath := tempFile(t, "agent.conf")
	if err := os.WriteFile(cfgPath, []byte("valid: true\n# v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out lockedWriter
	spec := agentSpec(t, "-config", cfgPath, "-hup", "-notify-ready-after", "0s")
	spec.NotifyReady, spec.ReloadMode = true, ReloadByNotify
	spec.Stdout, spec.Stderr = &out, &out
	// The agent killed by the bad config waits in Backoff for the
	// rollback to start it: restarted at once, it could read the bad file
	// again before the rollback rewrote it, and die again.
	spec.Restart.FirstDelay = config.Duration(time.Hour)
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// What a host applies a config with: a reload, or, for an agent
	// waiting to be restarted, the start that reads the file anew.
	apply := func(ctx context.Context) error {
		if err := p.Reload(ctx); !errors.Is(err, ErrNotRunning) {
			return err
		}
		return p.Start(ctx)
	}
	tx := reload.Transaction{Path: cfgPath, Apply: apply}
	if _, err := tx.Run(ctxTimeout(t, 10*time.Second), []byte("valid: true\n# v2\n")); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	out2, err := tx.Run(ctxTimeout(t, 20*time.Second), []byte("valid: false\n"))
	if !errors.Is(err, ErrReloadFailed) || out2.Stage != "apply" || out2.RollbackErr != nil {
		t.Fatalf("a config the agent dies of: %+v, %v; want a failed apply, rolled back", out2, err)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != "valid: true\n# v2\n" {
		t.Fatalf("file after the rollback: %q", b)
	}
	if st := p.Status(); st.State != Running {
		t.Fatalf("after the rollback: %+v, want Running on the last good config", st)
	}
}

package supervisor

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"syscall"
	"time"
)

// recentExitsKept is how many exits a Failed event carries.
const recentExitsKept = 5

// loop is a Process's owner goroutine: every field is touched only by run.
type loop struct {
	p        *Process
	cfg      *settings
	requests chan request
	done     chan struct{}

	st    Status
	child *child

	threadLocked  bool       // see lockThreadIfNeeded
	readiness     *readiness // polls the Ready probe of a Starting child
	startTimedOut bool       // the current child is being killed for not getting ready
	watchdogFired bool       // the current child is being killed for missing keep-alives
	stopWanted    bool       // the current child is being stopped on request
	startAfter    bool       // spawn again once the stopped child is reaped
	pendingReload bool

	startWaiters  []chan error
	stopWaiters   []chan error
	reloadWaiters []chan error

	// One-shot timers, armed only while something is scheduled, so an
	// idle agent costs no CPU.
	ready   timer // Starting -> Running after StartSeconds
	stable  timer // clears the streak after ResetAfter of Running
	restart timer // Backoff -> Starting
	kill    timer // Stopping: SIGKILL when StopTimeout ends
	retry   timer // Failed -> Backoff after RetryFailedAfter
	dog     timer // Running with a watchdog: next keep-alive deadline

	restarts    []time.Time // automatic restarts within RestartWindow
	recentExits []Exit
}

func newLoop(p *Process, st Status) *loop {
	return &loop{p: p, cfg: p.cfg, requests: make(chan request), done: make(chan struct{}), st: st}
}

func (l *loop) run() {
	defer l.p.retire(l)
	defer l.unlockThread()
	defer l.stopTimers()
	defer l.stopReadiness()
	l.lockThreadIfNeeded()
	for first := true; first || l.busy(); first = false {
		var exited <-chan Exit
		if l.child != nil {
			exited = l.child.done
		}
		select {
		case r := <-l.requests:
			l.handle(r)
		case e := <-exited:
			l.onExit(e)
		case <-l.readiness.Passed():
			l.ready.stop()
			l.stopReadiness()
			l.onReady()
		case <-l.ready.C():
			l.ready.stop()
			if l.readiness != nil {
				l.onStartTimeout()
			} else {
				l.onReady()
			}
		case <-l.stable.C():
			l.stable.stop()
			l.st.Streak = 0
			l.p.publish(l.st)
		case <-l.restart.C():
			l.restart.stop()
			l.restartNow()
		case <-l.kill.C():
			l.escalate()
		case <-l.dog.C():
			l.dog.stop()
			l.checkWatchdog()
		case <-l.retry.C():
			l.retry.stop()
			l.restarts, l.st.Streak = nil, 0
			l.set(Backoff, ReasonRetryFailed, nil)
			l.spawn(ReasonBackoffElapsed, false)
		}
	}
}

// busy reports whether the owner still has work: a child, a pending
// restart or retry, or callers to answer.
func (l *loop) busy() bool {
	return l.child != nil || l.restart.armed() || l.retry.armed() ||
		len(l.startWaiters)+len(l.stopWaiters)+len(l.reloadWaiters) > 0
}

// lockThreadIfNeeded pins the owner goroutine to its OS thread once the
// children get a parent-death signal: the kernel sends that signal when the
// thread that forked exits, and Go ends a thread when a goroutine locked to
// it returns, so no other goroutine may ever run there. The owner ends only
// when no child is left.
func (l *loop) lockThreadIfNeeded() {
	if l.cfg.parentDeathSignal != 0 && !l.threadLocked {
		runtime.LockOSThread()
		l.threadLocked = true
	}
}

func (l *loop) unlockThread() {
	if l.threadLocked {
		runtime.UnlockOSThread()
	}
}

func (l *loop) stopTimers() {
	for _, t := range []*timer{&l.ready, &l.stable, &l.restart, &l.kill, &l.retry, &l.dog} {
		t.stop()
	}
}

func (l *loop) handle(r request) {
	if (r.kind == reqStart || r.kind == reqRestart) && l.p.isClosed() {
		r.reply <- fmt.Errorf("agent %q: removed: %w", l.cfg.name, ErrNotFound)
		return
	}
	switch r.kind {
	case reqStart:
		l.onStart(r, ReasonStartRequested)
	case reqRestart:
		if l.child != nil {
			l.startAfter = true
			l.startWaiters = append(l.startWaiters, r.reply)
			l.beginStop(r.deadline)
			return
		}
		l.onStart(r, ReasonRestartRequested)
	case reqStop:
		l.onStop(r)
	case reqKill:
		if l.st.State == Stopping {
			l.escalate()
		}
	case reqUpdate:
		l.cfg = r.cfg
		l.p.mu.Lock()
		l.p.cfg = r.cfg
		l.p.mu.Unlock()
		l.lockThreadIfNeeded()
		r.reply <- nil
	case reqReload:
		switch l.st.State {
		case Running:
			r.reply <- l.signalMain(l.cfg.reloadSignal)
		case Starting:
			l.pendingReload = true
			l.reloadWaiters = append(l.reloadWaiters, r.reply)
		default:
			r.reply <- l.errorf(ErrNotRunning)
		}
	case reqSignal:
		if l.st.State == Starting || l.st.State == Running {
			r.reply <- l.signalMain(r.sig)
		} else {
			r.reply <- l.errorf(ErrNotRunning)
		}
	}
}

func (l *loop) onStart(r request, reason Reason) {
	switch l.st.State {
	case Running:
		r.reply <- l.errorf(ErrAlreadyStarted)
	case Starting:
		l.startWaiters = append(l.startWaiters, r.reply)
	case Stopping:
		l.startAfter = true
		l.startWaiters = append(l.startWaiters, r.reply)
	default: // Stopped, Exited, Failed, Backoff
		if l.st.State == Failed {
			l.restarts, l.st.Streak = nil, 0
		}
		l.restart.stop()
		l.retry.stop()
		l.startWaiters = append(l.startWaiters, r.reply)
		l.spawn(reason, true)
	}
}

func (l *loop) onStop(r request) {
	l.startAfter = false
	l.failStartWaiters(errors.New("stopped before it was ready"))
	switch {
	case l.child != nil:
		l.stopWaiters = append(l.stopWaiters, r.reply)
		l.beginStop(r.deadline)
	case l.st.State == Backoff || l.st.State == Failed && l.retry.armed():
		l.restart.stop()
		l.retry.stop()
		l.st.NextRestartAt = time.Time{}
		l.set(Stopped, ReasonStopRequested, nil)
		r.reply <- nil
	default:
		r.reply <- nil
	}
}

// beginStop starts (or shortens) the stop escalation of the live child.
func (l *loop) beginStop(deadline time.Time) {
	killAt := time.Now().Add(l.cfg.stopTimeout)
	if !deadline.IsZero() && deadline.Before(killAt) {
		killAt = deadline
	}
	if l.st.State == Stopping {
		if killAt.Before(l.kill.when) {
			l.kill.at(killAt)
		}
		return
	}
	l.stopWanted = true
	l.ready.stop()
	l.dog.stop()
	l.stopReadiness()
	l.stable.stop()
	l.set(Stopping, ReasonStopRequested, nil)
	l.child.signalGroup(l.cfg.stopSignal) //nolint:errcheck // ESRCH: already gone, the exit is on its way
	l.child.signalGroup(syscall.SIGCONT)  //nolint:errcheck // a stopped process cannot act on the stop signal
	l.kill.at(killAt)
}

func (l *loop) escalate() {
	l.kill.stop()
	if l.child != nil {
		l.cfg.log.Info("stop timeout over; killing the process group", "pid", l.child.pid)
		l.child.signalGroup(syscall.SIGKILL) //nolint:errcheck // ESRCH: already gone
	}
}

// spawn starts a child. manual marks a Start or Restart call: its spawn
// error fails the call and moves to Failed, while an automatic restart's
// spawn error is one more failed run, paced by the backoff.
func (l *loop) spawn(reason Reason, manual bool) {
	l.st.NextRestartAt = time.Time{}
	c, err := spawn(l.cfg)
	if err != nil {
		exit := Exit{Code: -1, Err: "spawn: " + err.Error(), Time: time.Now()}
		l.cfg.log.Error(err, "cannot start agent", "path", l.cfg.path)
		if manual {
			l.st.LastExit = &exit
			l.enterFailed(ReasonSpawnFailed, nil)
			l.failStartWaiters(fmt.Errorf("spawn %s: %w", l.cfg.path, err))
			return
		}
		l.onUnrequestedExit(exit, ReasonSpawnFailed)
		return
	}
	l.child = c
	l.st.PID, l.st.StartedAt = c.pid, c.started
	l.set(Starting, reason, nil)
	switch {
	case c.notify != nil:
		l.readiness = startReadiness(c.notify.waitReady)
		l.ready.after(l.cfg.startTimeout)
	case l.cfg.ready != nil:
		l.readiness = startReadiness(l.cfg.ready)
		l.ready.after(l.cfg.startTimeout)
	default:
		l.ready.after(l.cfg.startWait)
	}
}

// checkWatchdog kills a Running child that sent no WATCHDOG=1 within the
// watchdog period, or waits for the end of the period since its last one.
func (l *loop) checkWatchdog() {
	if l.child == nil || l.st.State != Running {
		return
	}
	last := time.Unix(0, l.child.notify.lastKeepalive.Load())
	if deadline := last.Add(l.cfg.watchdog); time.Now().Before(deadline) {
		l.dog.at(deadline)
		return
	}
	l.watchdogFired = true
	l.cfg.log.Info("agent missed its watchdog; killing it", "pid", l.child.pid, "watchdog", l.cfg.watchdog.String())
	l.child.signalGroup(syscall.SIGKILL) //nolint:errcheck // ESRCH: already gone
}

// onStartTimeout kills a child whose Ready probe did not pass within
// StartTimeout; its exit then counts as a failed run.
func (l *loop) onStartTimeout() {
	l.stopReadiness()
	l.startTimedOut = true
	l.cfg.log.Info("agent not ready within its start timeout; killing it", "pid", l.child.pid, "startTimeout", l.cfg.startTimeout.String())
	l.child.signalGroup(syscall.SIGKILL) //nolint:errcheck // ESRCH: already gone
}

func (l *loop) stopReadiness() {
	l.readiness.stop()
	l.readiness = nil
}

func (l *loop) onReady() {
	l.set(Running, ReasonReady, nil)
	l.stable.after(l.cfg.resetAfter)
	if n := l.child.notify; n != nil && l.cfg.watchdog > 0 {
		n.lastKeepalive.Store(time.Now().UnixNano())
		go n.serve() // ends when the socket closes with the child
		l.dog.after(l.cfg.watchdog)
	}
	for _, w := range l.startWaiters {
		w <- nil
	}
	l.startWaiters = nil
	if l.pendingReload {
		l.pendingReload = false
		err := l.signalMain(l.cfg.reloadSignal)
		for _, w := range l.reloadWaiters {
			w <- err
		}
		l.reloadWaiters = nil
	}
}

func (l *loop) onExit(e Exit) {
	l.child = nil
	l.stopReadiness()
	if l.startTimedOut {
		l.startTimedOut = false
		e.Err = fmt.Sprintf("start timeout: not ready within %v", l.cfg.startTimeout)
	}
	if l.watchdogFired {
		l.watchdogFired = false
		e.Err = fmt.Sprintf("watchdog timeout: no WATCHDOG=1 for %v", l.cfg.watchdog)
	}
	l.dog.stop()
	l.ready.stop()
	l.stable.stop()
	l.kill.stop()
	l.st.PID = 0
	l.failReloadWaiters()
	if l.stopWanted {
		l.stopWanted = false
		e.Requested = true
		l.st.LastExit = &e
		for _, w := range l.stopWaiters {
			w <- nil
		}
		l.stopWaiters = nil
		if l.startAfter {
			l.startAfter = false
			l.spawn(ReasonRestartRequested, true)
			return
		}
		l.set(Stopped, ReasonStopped, nil)
		return
	}
	l.cfg.log.Info("agent exited", "exit", e.String(), "ran", e.Ran.String())
	l.onUnrequestedExit(e, ReasonExited)
}

// onUnrequestedExit applies the restart decision, in systemd's order:
// prevent codes, then the policy, then the restart limit, then backoff.
func (l *loop) onUnrequestedExit(e Exit, reason Reason) {
	l.st.LastExit = &e
	l.recentExits = append(l.recentExits, e)
	if len(l.recentExits) > recentExitsKept {
		l.recentExits = slices.Delete(l.recentExits, 0, len(l.recentExits)-recentExitsKept)
	}
	switch {
	case e.Err == "" && e.Signal == 0 && slices.Contains(l.cfg.preventCodes, e.Code):
		l.enterFailed(ReasonPreventExitCode, nil)
	case l.cfg.policy == RestartNever || l.cfg.policy == RestartOnFailure && e.success(l.cfg.successCodes):
		l.set(Exited, reason, nil)
	case l.limitReached(e.Time):
		l.enterFailed(ReasonRestartLimit, slices.Clone(l.recentExits))
	default:
		l.st.Streak++
		delay := time.Duration(0)
		if l.st.Streak > 1 {
			delay = l.cfg.backoff.Delay(l.st.Streak - 1)
		}
		l.st.NextRestartAt = e.Time.Add(delay)
		l.set(Backoff, reason, nil)
		if l.cfg.restartAt != nil {
			if at := l.cfg.restartAt(l.st.NextRestartAt); at.After(l.st.NextRestartAt) {
				l.st.NextRestartAt = at
				l.set(Backoff, ReasonRestartBudget, nil)
			}
		}
		if time.Until(l.st.NextRestartAt) > 0 {
			l.restart.at(l.st.NextRestartAt)
		} else {
			l.restartNow()
		}
		return
	}
	l.failStartWaiters(errors.New(e.String()))
}

// restartNow is the automatic restart at the end of Backoff.
func (l *loop) restartNow() {
	l.st.Restarts++
	l.restarts = append(l.restarts, time.Now())
	l.spawn(ReasonBackoffElapsed, false)
}

// limitReached prunes restarts older than the window and reports whether
// one more would exceed MaxRestarts.
func (l *loop) limitReached(now time.Time) bool {
	if l.cfg.maxRestarts < 0 {
		return false
	}
	cutoff := now.Add(-l.cfg.window)
	l.restarts = slices.DeleteFunc(l.restarts, func(t time.Time) bool { return t.Before(cutoff) })
	return len(l.restarts) >= l.cfg.maxRestarts
}

func (l *loop) enterFailed(reason Reason, exits []Exit) {
	if l.cfg.retryFailedAfter > 0 {
		l.st.NextRestartAt = time.Now().Add(l.cfg.retryFailedAfter)
		l.retry.at(l.st.NextRestartAt)
	}
	l.set(Failed, reason, exits)
}

func (l *loop) failStartWaiters(cause error) {
	for _, w := range l.startWaiters {
		w <- fmt.Errorf("agent %q: %w: %w", l.cfg.name, ErrStartFailed, cause)
	}
	l.startWaiters = nil
}

func (l *loop) failReloadWaiters() {
	l.pendingReload = false
	for _, w := range l.reloadWaiters {
		w <- l.errorf(ErrNotRunning)
	}
	l.reloadWaiters = nil
}

func (l *loop) signalMain(sig os.Signal) error {
	if err := l.child.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return l.errorf(ErrNotRunning)
		}
		return fmt.Errorf("agent %q: signal %v: %w", l.cfg.name, sig, err)
	}
	return nil
}

func (l *loop) errorf(sentinel error) error {
	return fmt.Errorf("agent %q: %w", l.cfg.name, sentinel)
}

// set records a transition, publishes the snapshot and queues the event
// for every subscriber.
func (l *loop) set(to State, reason Reason, exits []Exit) {
	from := l.st.State
	l.st.State = to
	l.p.publish(l.st)
	l.p.subs.Publish(Event{Name: l.cfg.name, From: from, To: to, Reason: reason, Status: l.st, Exits: exits, Time: time.Now()})
}

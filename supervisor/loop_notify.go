package supervisor

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// onNotify acts on what the current child said over its notify socket
// since the owner last looked (see notifyState): STATUS= text, RELOADING=1
// and READY=1 (a reload), STOPPING=1, WATCHDOG=trigger, WATCHDOG_USEC= and
// EXTEND_TIMEOUT_USEC=.
func (l *loop) onNotify() {
	r := l.cur
	if r == nil || r.notify == nil {
		return
	}
	now, was := r.notify.snapshot(), r.said
	r.said = now
	publish := false
	if now.status != nil && *now.status != l.st.NotifyStatus {
		l.st.NotifyStatus = *now.status
		publish = true
	}
	if now.reloadingSeq > was.reloadingSeq {
		l.st.Reloading = true
		publish = true
		if op := r.reload; op != nil && now.reloadingSeq > op.sentSeq && (now.reloadingMono == 0 || now.reloadingMono >= op.sentMono) {
			op.acked = true // a RELOADING=1 sent after the signal, not a stale one
		}
	}
	reloaded := false
	if now.readySeq > was.readySeq && now.readySeq > now.reloadingSeq && l.st.Reloading {
		l.st.Reloading = false
		publish = true
		reloaded = r.reload != nil && r.reload.acked
	}
	if publish {
		l.p.publish(l.st) // before any answer: a caller reads the Status it ends with
	}
	if reloaded {
		l.finishReload(nil)
	}
	if now.mainPID != was.mainPID {
		l.adoptMain(now.mainPID)
	}
	if now.watchdog != nil && (was.watchdog == nil || *now.watchdog != *was.watchdog) {
		l.setWatchdog(*now.watchdog)
	}
	live := (l.st.State == Starting || l.st.State == Running) && r.killing == notKilling
	switch {
	case now.triggered && live:
		l.cfg.log.V(1).Info("agent triggered its watchdog; killing it", "pid", r.pid)
		r.killGroup(killTriggered)
	case now.stopping && !was.stopping && live && !r.stopping:
		l.selfStop()
	}
	// After a stop it began, so that STOPPING=1 and EXTEND_TIMEOUT_USEC=
	// in one message extend the stop timeout just armed.
	if now.extendTo.After(was.extendTo) {
		l.extendTimeout(now.extendTo)
	}
}

// adoptMain shows a MAINPID= the child took (the reader handed it over
// before answering the sender) as the agent's PID.
func (l *loop) adoptMain(pid int) {
	if pid == l.st.PID {
		return
	}
	l.cfg.log.Info("agent named a new main process", "pid", pid, "was", l.st.PID)
	l.st.PID = pid
	l.p.publish(l.st)
}

// takeLastWords applies what the child said just before it ended, before
// its exit is handled: a READY=1 from a sender that is already gone still
// makes the child Running first, and ERRNO= and EXIT_STATUS= reach the
// Exit.
func (l *loop) takeLastWords() {
	r := l.cur
	if r.notify == nil {
		return
	}
	l.onNotify()
	if l.st.State != Starting || r.readiness == nil || r.killing != notKilling {
		return
	}
	select {
	case <-r.notify.ready:
		r.ready.stop()
		l.stopReadiness()
		l.onReady()
	default:
	}
}

// extendTimeout moves the timeout in force out to at least to, never in
// (EXTEND_TIMEOUT_USEC=): the start timeout while Starting, a notify
// reload's timeout, or the stop timeout of a stop the agent began.
func (l *loop) extendTimeout(to time.Time) {
	r := l.cur
	extend := func(t *timer) {
		if t.armed() && to.After(t.when) {
			t.at(to)
		}
	}
	if l.st.State == Starting && r.readiness != nil {
		extend(&r.ready)
	}
	extend(&r.reloadTimer)
	if r.stopping {
		extend(&r.kill)
	}
}

// setWatchdog takes a new watchdog period the child asked for with
// WATCHDOG_USEC= (0 turns it off), counted from its last keep-alive.
func (l *loop) setWatchdog(d time.Duration) {
	r := l.cur
	r.watchdog = d
	r.dog.stop()
	if d > 0 && l.st.State == Running {
		r.dog.at(r.notify.keepalive().Add(d))
	}
}

// checkWatchdog kills a Running child that sent no WATCHDOG=1 within the
// watchdog period, or waits for the end of the period since its last one.
// The period is the run's own: the child was told it at spawn, or asked
// for another.
func (l *loop) checkWatchdog() {
	r := l.cur
	if r == nil || l.st.State != Running || r.watchdog <= 0 {
		return
	}
	if deadline := r.notify.keepalive().Add(r.watchdog); time.Now().Before(deadline) {
		r.dog.at(deadline)
		return
	}
	l.cfg.log.V(1).Info("agent missed its watchdog; killing it", "pid", r.pid, "watchdog", r.watchdog.String())
	r.killGroup(killWatchdog)
}

// onUnhealthy takes a health verdict on run: only a Running child of
// that run is stopped, its exit then a failed run.
func (l *loop) onUnhealthy(run uint64, reason string) error {
	r := l.cur
	if r == nil || l.st.State != Running || l.st.Run != run || r.killing != notKilling || r.stopping {
		return fmt.Errorf("agent %q: run %d: %w (current run %d is %s)", l.cfg.name, run, ErrNotApplicable, l.st.Run, l.st.State)
	}
	l.cfg.log.V(1).Info("agent unhealthy; stopping it", "pid", r.pid, "reason", reason)
	r.killing, r.unhealthy = killUnhealthy, reason
	l.failPendingReloads(l.errorf(ErrNotRunning))
	l.askToStop(ReasonUnhealthy, time.Now().Add(l.cfg.stopTimeout))
	return nil
}

// selfStop takes STOPPING=1 from a live child: it is Stopping, and
// killed if it is still there after StopTimeout.
func (l *loop) selfStop() {
	r := l.cur
	r.stopping = true
	r.ready.stop()
	r.dog.stop()
	r.stable.stop()
	if r.readiness != nil {
		l.stopReadiness()
	}
	l.failStartWaiters(fmt.Errorf("the agent reported STOPPING=1 before it was ready"))
	l.set(Stopping, ReasonAgentStopping, nil)
	r.kill.after(l.cfg.stopTimeout)
}

// onReload serves Reload by the agent's ReloadMode. Reloads coalesce: one
// under way, the callers that come meanwhile served together by the next.
func (l *loop) onReload(req request) {
	switch {
	case l.cfg.reloadMode == ReloadNone, l.cfg.task != nil && l.cfg.reloadMode != ReloadByRestart:
		req.reply <- l.errorf(ErrReloadUnsupported)
	case l.st.State != Starting && l.st.State != Running:
		req.reply <- l.errorf(ErrNotRunning)
	case l.cfg.reloadMode == ReloadByRestart:
		l.handle(request{kind: reqRestart, deadline: req.deadline, reply: req.reply})
	case l.st.State == Starting || l.cur.reload != nil:
		l.reloadWaiters = append(l.reloadWaiters, req.reply)
	default:
		l.beginReload([]chan error{req.reply})
	}
}

// reloadPending starts the reload that callers wait for, once the child
// is Running with no reload under way.
func (l *loop) reloadPending() {
	if len(l.reloadWaiters) > 0 && l.st.State == Running && l.cur.reload == nil {
		waiters := l.reloadWaiters
		l.reloadWaiters = nil
		l.beginReload(waiters)
	}
}

// beginReload sends the reload signal; with ReloadByNotify the waiters are
// answered when the child reports the reload done, or at the timeout.
func (l *loop) beginReload(waiters []chan error) {
	r := l.cur
	var op *reloadOp
	if l.cfg.reloadMode == ReloadByNotify {
		op = &reloadOp{sentSeq: r.notify.snapshot().seq, sentMono: monotonicNow(), waiters: waiters}
	}
	err := l.signalMain(l.cfg.reloadSignal)
	if err != nil || op == nil {
		r.reloadSent = r.reloadSent || err == nil
		for _, w := range waiters {
			w <- err
		}
		return
	}
	r.reloadSent, r.reload = true, op
	r.reloadTimer.after(l.cfg.startTimeout)
}

// finishReload answers the callers of the reload under way and starts
// the next, if callers wait for one.
func (l *loop) finishReload(err error) {
	r := l.cur
	for _, w := range r.reload.waiters {
		w <- err
	}
	r.reload = nil
	r.reloadTimer.stop()
	l.reloadPending()
}

func (l *loop) onReloadTimeout() {
	r := l.cur
	r.reloadTimer.stop()
	if r.reload == nil {
		return
	}
	l.st.Reloading = false
	l.p.publish(l.st)
	l.cfg.log.V(1).Info("agent did not finish its reload in time", "pid", r.pid, "timeout", l.cfg.startTimeout.String())
	l.finishReload(fmt.Errorf("agent %q: %w: no RELOADING=1 and READY=1 within %v", l.cfg.name, ErrReloadFailed, l.cfg.startTimeout))
}

// failReloads answers every reload caller once the child of run r has
// ended with e, and says how the exit is reported: a child that died
// during a reload, or of its reload signal, failed its reload.
func (l *loop) failReloads(r *run, e Exit) Reason {
	reason := ReasonExited
	if r.reload != nil || r.reloadSent && e.Signal == Signal(l.cfg.reloadSignal) {
		reason = ReasonReloadFailed
	}
	if r.reload != nil {
		err := fmt.Errorf("agent %q: %w: it exited during the reload: %s", l.cfg.name, ErrReloadFailed, e.String())
		for _, w := range r.reload.waiters {
			w <- err
		}
		r.reload = nil
	}
	l.failPendingReloads(l.errorf(ErrNotRunning))
	return reason
}

// failPendingReloads answers the callers waiting for a reload to begin.
func (l *loop) failPendingReloads(err error) {
	for _, w := range l.reloadWaiters {
		w <- err
	}
	l.reloadWaiters = nil
}

// monotonicNow is CLOCK_MONOTONIC, the clock of MONOTONIC_USEC=.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

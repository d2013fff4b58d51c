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

// spawnRetryFloor is the least wait before an automatic restart that
// follows a spawn failure, whatever the backoff policy says (systemd's
// RestartSec default): a missing binary must not make the owner spin.
const spawnRetryFloor = 100 * time.Millisecond

// loop is a Process's owner goroutine: every field is touched only by run.
type loop struct {
	p        *Process
	cfg      *settings
	requests chan request
	done     chan struct{}

	st  Status
	cur *run // the live child, nil when there is none

	threadLocked bool // see lockThreadIfNeeded
	startAfter   bool // spawn again once the stopped child is reaped
	// restartFor is why the restart pending (Backoff's, or startAfter's
	// for a Restart or a dependency) is one, counted when it happens.
	restartFor restartCause

	startWaiters []chan error
	stopWaiters  []chan error
	// reloadWaiters wait for the next reload: the child is Starting, or
	// a reload it has not finished is under way (see loop_notify.go).
	reloadWaiters []chan error

	// One-shot timers of the agent, armed only while something is
	// scheduled, so an idle agent costs no CPU. The child's own timers
	// live in its run.
	restart timer // Backoff -> Starting
	retry   timer // Failed -> Backoff after RetryFailedAfter

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
	l.lockThreadIfNeeded()
	for first := true; first || l.busy(); first = false {
		var exited <-chan Exit
		var passed, news <-chan struct{}
		var ready, stable, kill, dog, reload <-chan time.Time
		if r := l.cur; r != nil {
			exited, passed = r.exited, r.readiness.Passed()
			ready, stable, kill, dog, reload = r.ready.C(), r.stable.C(), r.kill.C(), r.dog.C(), r.reloadTimer.C()
			if r.notify != nil {
				news = r.notify.news
			}
		}
		select {
		case r := <-l.requests:
			l.handle(r)
			if r.taken != nil {
				close(r.taken)
			}
		case e := <-exited:
			l.onExit(e)
		case <-passed:
			l.cur.ready.stop()
			l.stopReadiness()
			l.onReady()
		case <-ready:
			l.cur.ready.stop()
			switch {
			case l.cfg.task != nil:
				l.onTaskTimeout()
			case l.cur.readiness != nil:
				l.onStartTimeout()
			default:
				l.onReady()
			}
		case <-stable:
			l.cur.stable.stop()
			l.st.Streak = 0
			l.p.publish(l.st)
		case <-l.restart.C():
			l.restart.stop()
			l.restartNow()
		case <-kill:
			l.escalate()
		case <-dog:
			l.cur.dog.stop()
			l.checkWatchdog()
		case <-news:
			l.onNotify()
		case <-reload:
			l.onReloadTimeout()
		case <-l.retry.C():
			l.retry.stop()
			l.clearCounters()
			l.scheduleRestart(time.Now(), ReasonRetryFailed)
		}
	}
}

// busy reports whether the owner still has work: a child, a pending
// restart or retry, or callers to answer.
func (l *loop) busy() bool {
	return l.cur != nil || l.restart.armed() || l.retry.armed() ||
		len(l.startWaiters)+len(l.stopWaiters)+len(l.reloadWaiters) > 0
}

// lockThreadIfNeeded pins the owner goroutine to its OS thread once the
// children get a parent-death signal: the kernel sends that signal when the
// thread that forked exits, and Go ends a thread when a goroutine locked to
// it returns, so no other goroutine may ever run there. The owner ends only
// when no child is left.
func (l *loop) lockThreadIfNeeded() {
	if l.cfg.contract.parentDeathSignal != 0 && !l.threadLocked {
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
	l.restart.stop()
	l.retry.stop()
	if l.cur != nil { // only if the owner is ending abnormally
		l.cur.end()
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
		if l.cur != nil {
			l.startAfter, l.restartFor = true, causeRequested
			l.startWaiters = append(l.startWaiters, r.reply)
			l.beginStop(r.deadline, ReasonStopRequested)
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
		old := l.cfg
		l.cfg = r.cfg
		l.rescheduleIfChanged(old, r.cfg)
		l.st.Limits = r.cfg.resources
		l.p.mu.Lock()
		l.p.cfg = r.cfg
		l.p.status.Limits = r.cfg.resources
		l.p.mu.Unlock()
		l.lockThreadIfNeeded()
		r.reply <- nil
	case reqReload:
		l.onReload(r)
	case reqUnhealthy:
		r.reply <- l.onUnhealthy(r.run, r.reason)
	case reqPause:
		l.pause(r.pause)
	case reqSignal:
		if l.st.State == Starting || l.st.State == Running {
			r.reply <- l.signalMain(r.sig)
		} else {
			r.reply <- l.errorf(ErrNotRunning)
		}
	case reqDependencies:
		l.onDependencies()
	case reqScheduled:
		l.onScheduled(r.due)
	case reqHealthy:
		r.reply <- l.onHealthy(r.run)
	}
}

func (l *loop) onStart(r request, reason Reason) {
	if reason == ReasonStartRequested && l.cfg.task != nil && l.cfg.task.schedule != nil && l.cur == nil && !l.restart.armed() {
		l.startSchedule(r)
		return
	}
	switch l.st.State {
	case Running:
		r.reply <- l.errorf(ErrAlreadyStarted)
	case Starting:
		l.startWaiters = append(l.startWaiters, r.reply)
	case Stopping:
		l.startAfter = true // after a stop: a start, not a restart
		l.startWaiters = append(l.startWaiters, r.reply)
	default: // Stopped, Exited, Failed, Backoff
		if l.st.State == Failed {
			l.clearCounters()
		}
		l.restart.stop()
		l.retry.stop()
		l.startWaiters = append(l.startWaiters, r.reply)
		l.spawn(reason, true)
	}
}

func (l *loop) onStop(r request) {
	l.startAfter, l.restartFor = false, ""
	l.failStartWaiters(errors.New("stopped before it was ready"))
	scheduled := l.disarmSchedule()
	switch {
	case l.cur != nil:
		l.stopWaiters = append(l.stopWaiters, r.reply)
		l.beginStop(r.deadline, ReasonStopRequested)
	case l.st.State == Backoff || l.st.State == Waiting || l.st.State == Failed && l.retry.armed() || scheduled:
		l.restart.stop()
		l.retry.stop()
		l.st.NextRestartAt, l.st.WaitingFor = time.Time{}, ""
		l.set(Stopped, ReasonStopRequested, nil)
		r.reply <- nil
	default:
		r.reply <- nil
	}
}

// beginStop starts (or shortens) the stop escalation of the live child,
// for reason.
func (l *loop) beginStop(deadline time.Time, reason Reason) {
	killAt := time.Now().Add(l.cfg.stopTimeout)
	if !deadline.IsZero() && deadline.Before(killAt) {
		killAt = deadline
	}
	r := l.cur
	if r.killing == killRequested {
		if killAt.Before(r.kill.when) {
			r.kill.at(killAt)
		}
		return
	}
	// A stop overrides a start-timeout or watchdog kill under way: the
	// caller asked for it, so the exit is requested.
	r.killing = killRequested
	r.ready.stop()
	l.stopReadiness()
	l.askToStop(reason, killAt)
}

// askToStop sends the stop signal to the live child's group, SIGKILL to
// follow at killAt: the stop escalation, whoever decided it.
func (l *loop) askToStop(reason Reason, killAt time.Time) {
	r := l.cur
	r.dog.stop()
	r.stable.stop()
	l.set(Stopping, reason, nil)
	r.signal(l.cfg.stopSignal, true) //nolint:errcheck // ESRCH: already gone, the exit is on its way
	r.signal(syscall.SIGCONT, true)  //nolint:errcheck // a stopped process cannot act on the stop signal
	r.kill.at(killAt)
}

func (l *loop) escalate() {
	if r := l.cur; r != nil {
		r.kill.stop()
		l.cfg.log.Info("stop timeout over; killing the process group", "pid", r.pid)
		// A stop keeps the reason it has (requested, unhealthy); one the
		// agent began itself (STOPPING=1) has none, and overran: a failed run.
		r.killGroup(killStopTimeout)
	}
}

// spawn starts a child. manual marks a Start or Restart call: its spawn
// error fails the call and moves to Failed, while an automatic restart's
// spawn error is one more failed run, paced by the backoff.
func (l *loop) spawn(reason Reason, manual bool) {
	l.st.NextRestartAt = time.Time{}
	if waitingFor, hopeless := l.cfg.deps.wait(); waitingFor != "" {
		l.holdBack(waitingFor, hopeless)
		return
	}
	c, err := l.cfg.spawn(l.cfg, &l.p.files)
	if err != nil {
		exit := Exit{Code: -1, Err: "spawn: " + err.Error(), Time: time.Now()}
		if manual {
			l.st.LastExit = &exit
			l.enterFailed(ReasonSpawnFailed, nil)
			l.failStartWaiters(fmt.Errorf("spawn %s: %w", l.cfg.contract.path, err))
			return
		}
		l.onUnrequestedExit(exit, ReasonSpawnFailed)
		return
	}
	r := &run{spawned: c, contract: l.cfg.contract, watchdog: l.cfg.contract.watchdog, depRuns: l.cfg.deps.runs()}
	l.cur = r
	l.st.PID, l.st.StartedAt, l.st.NotifyStatus, l.st.Reloading = c.pid, c.started, "", false
	l.st.WaitingFor, l.st.Healthy = "", false
	l.st.Boundary, l.st.Limits, l.st.LeaderStart = c.boundary, l.cfg.resources, c.leaderStart
	l.st.Run++
	l.set(Starting, reason, nil)
	switch {
	case l.cfg.task != nil:
		if l.cfg.task.timeout > 0 {
			r.ready.after(l.cfg.task.timeout)
		}
	case c.notify != nil:
		r.readiness = readyOn(c.notify.ready)
		r.ready.after(l.cfg.startTimeout)
	case l.cfg.ready != nil:
		r.readiness = startReadiness(l.cfg.ready)
		r.ready.after(l.cfg.startTimeout)
	default:
		r.ready.after(l.cfg.startWait)
	}
}

// onStartTimeout kills a child whose Ready probe did not pass within
// StartTimeout; its exit then counts as a failed run.
func (l *loop) onStartTimeout() {
	r := l.cur
	r.probeFailure = r.readiness.lastFailure()
	l.stopReadiness()
	l.cfg.log.V(1).Info("agent not ready within its start timeout; killing it", "pid", r.pid, "startTimeout", l.cfg.startTimeout.String(), "lastProbeError", r.probeFailure)
	r.killGroup(killStartTimeout)
}

func (l *loop) stopReadiness() {
	l.cur.readiness.stop()
	l.cur.readiness = nil
}

func (l *loop) onReady() {
	r := l.cur
	l.set(Running, ReasonReady, nil)
	r.stable.after(l.cfg.resetAfter)
	if n := r.notify; n != nil && r.watchdog > 0 {
		n.resetKeepalive(time.Now())
		r.dog.after(r.watchdog)
	}
	l.answerStartWaiters()
	l.reloadPending()
}

func (l *loop) onExit(e Exit) {
	l.takeLastWords()
	r := l.cur
	l.cur = nil
	r.end()
	e = r.describe(e, l.cfg)
	l.st.PID, l.st.LeaderStart, l.st.Reloading = 0, 0, false
	reason := l.failReloads(r, e)
	switch {
	case r.killing == killUnhealthy:
		reason = ReasonUnhealthy
	case r.killing == killTaskTimeout:
		reason = ReasonTaskTimeout
	case e.OOMKilled && !e.Requested:
		reason = ReasonOOMKilled
	}
	if e.Requested {
		// The Status is published before Stop returns, so a caller reads
		// the exit (and Stopped) as soon as it has its answer.
		l.st.LastExit = &e
		if !l.startAfter {
			l.p.files.store.empty() // a requested stop empties the fd store, as systemd's
			l.set(Stopped, ReasonStopped, nil)
			l.answerStopWaiters()
			return
		}
		l.startAfter = false
		l.st.RestartsBy.add(l.restartFor)
		l.restartFor = ""
		l.p.publish(l.st)
		l.answerStopWaiters()
		l.spawn(ReasonRestartRequested, true)
		return
	}
	if l.cfg.task != nil && e.success(l.cfg.successCodes) {
		l.onCompleted(e)
		return
	}
	if r.stopping && e.success(l.cfg.successCodes) {
		// It said STOPPING=1 and ended cleanly: its own decision to
		// stop, not a crash, whatever the restart policy.
		l.st.LastExit = &e
		l.set(Exited, ReasonAgentStopped, nil)
		l.failStartWaiters(errors.New("the agent stopped on its own (STOPPING=1)"))
		return
	}
	l.onUnrequestedExit(e, reason)
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
		delay := l.cfg.firstDelay
		if l.st.Streak > 1 {
			delay = l.cfg.backoff.Delay(l.st.Streak - 1)
		}
		if reason == ReasonSpawnFailed {
			delay = max(delay, spawnRetryFloor)
		}
		l.scheduleRestart(e.Time.Add(delay), reason)
		return
	}
	l.failStartWaiters(errors.New(e.Cause()))
}

// scheduleRestart enters Backoff for an automatic restart due at due,
// later if the Group's restart budget says so, and restarts at once when
// it is already due.
func (l *loop) scheduleRestart(due time.Time, reason Reason) {
	l.st.NextRestartAt = due
	l.restartFor = causeOf(reason)
	l.set(Backoff, reason, nil)
	if l.cfg.restartAt != nil {
		if at := l.cfg.restartAt(due); at.After(due) {
			l.st.NextRestartAt = at
			l.set(Backoff, ReasonRestartBudget, nil)
		}
	}
	// After a spawn failure the restart always waits for the timer:
	// restarting from here would recurse while the binary is missing.
	if reason != ReasonSpawnFailed && !time.Now().Before(l.st.NextRestartAt) {
		l.restartNow()
	} else {
		l.restart.at(l.st.NextRestartAt)
	}
}

// restartNow is the automatic restart at the end of Backoff.
func (l *loop) restartNow() {
	l.st.Restarts++
	l.st.RestartsBy.add(l.restartFor)
	l.restartFor = ""
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

// clearCounters starts the restart accounting afresh, as after Failed.
func (l *loop) clearCounters() {
	l.restarts, l.recentExits, l.st.Streak = nil, nil, 0
}

func (l *loop) enterFailed(reason Reason, exits []Exit) {
	if l.cfg.retryFailedAfter > 0 {
		l.st.NextRestartAt = time.Now().Add(l.cfg.retryFailedAfter)
		l.retry.at(l.st.NextRestartAt)
	}
	l.set(Failed, reason, exits)
}

// answerStartWaiters tells the Start callers the agent got there.
func (l *loop) answerStartWaiters() {
	for _, w := range l.startWaiters {
		w <- nil
	}
	l.startWaiters = nil
}

func (l *loop) failStartWaiters(cause error) {
	for _, w := range l.startWaiters {
		w <- fmt.Errorf("agent %q: %w: %w", l.cfg.name, ErrStartFailed, cause)
	}
	l.startWaiters = nil
}

func (l *loop) answerStopWaiters() {
	for _, w := range l.stopWaiters {
		w <- nil
	}
	l.stopWaiters = nil
}

func (l *loop) signalMain(sig os.Signal) error {
	ssig, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("agent %q: signal %v: not a syscall.Signal", l.cfg.name, sig)
	}
	if err := l.cur.signal(ssig, false); err != nil {
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
	from, now := l.st.State, time.Now()
	if to != from || l.st.StateSince.IsZero() {
		if from == Backoff && !l.st.StateSince.IsZero() {
			l.st.InBackoff += now.Sub(l.st.StateSince)
		}
		l.st.StateSince = now
	}
	l.st.State = to
	l.p.publish(l.st)
	e := Event{Name: l.cfg.name, From: from, To: to, Reason: reason, Status: l.st, Exits: exits, Time: now}
	l.p.history.add(e)
	logTransition(l.cfg.log, e)
	l.p.subs.Publish(e)
	if l.p.group != nil {
		l.p.group.Publish(e)
	}
	if l.p.tell != nil {
		l.p.tell(l.cfg.name)
	}
}

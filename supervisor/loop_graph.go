package supervisor

import (
	"fmt"
	"time"
)

// holdBack keeps the agent Waiting for its dependencies instead of
// spawning, and fails the Start callers when one cannot come up by
// itself (the agent still waits: a dependency retried later, or started
// by the operator, lets it start).
func (l *loop) holdBack(waitingFor string, hopeless error) {
	if l.st.State != Waiting || l.st.WaitingFor != waitingFor {
		l.st.WaitingFor = waitingFor
		l.set(Waiting, ReasonWaitingForDependencies, nil)
	}
	if hopeless != nil {
		l.failStartWaiters(hopeless)
	}
}

// onDependencies acts on a change of a dependency: a Waiting agent starts
// once they all hold; a running one stops, to start again once they hold,
// when a dependency's Propagation says so.
func (l *loop) onDependencies() {
	switch r := l.cur; {
	case l.st.State == Waiting && l.st.WaitingFor != "":
		l.spawn(ReasonDependenciesMet, false)
	case r != nil && r.killing == notKilling:
		if reason, name := l.cfg.deps.propagated(r.depRuns); reason != "" {
			l.cfg.log.V(1).Info("stopping with its dependency", "dependency", name, "why", string(reason))
			l.startAfter = true
			if reason == ReasonDependencyRestarted {
				l.restartFor = causeDependency
			}
			l.beginStop(time.Time{}, reason)
		}
	}
}

// onHealthy marks the current run healthy (Process.Healthy).
func (l *loop) onHealthy(run uint64) error {
	if l.st.State != Running || l.st.Run != run {
		return fmt.Errorf("agent %q: %w: run %d is not the current Running one", l.cfg.name, ErrNotApplicable, run)
	}
	if !l.st.Healthy {
		l.st.Healthy = true
		l.set(Running, ReasonHealthy, nil)
	}
	return nil
}

// onCompleted ends a task's run that exited with success: its goal met,
// the failure streak is over and Start returns nil.
func (l *loop) onCompleted(e Exit) {
	l.st.LastExit = &e
	l.st.Streak = 0
	l.set(Completed, ReasonCompleted, nil)
	l.answerStartWaiters()
}

// onTaskTimeout kills a task's run that outlived TaskSpec.Timeout; its
// exit counts as a failed run.
func (l *loop) onTaskTimeout() {
	l.cfg.log.V(1).Info("task still running at its timeout; killing it", "pid", l.cur.pid, "timeout", l.cfg.task.timeout.String())
	l.cur.killGroup(killTaskTimeout)
}

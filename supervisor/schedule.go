package supervisor

import (
	"math/rand/v2"
	"sync"
	"time"
)

// scheduleTimer is a scheduled task's one timer, armed for its next due
// run while the task is started. It lives outside the owner goroutine, so
// an idle scheduled task costs one runtime timer and no goroutine; when it
// fires it hands the owner a reqScheduled.
type scheduleTimer struct {
	mu sync.Mutex
	t  *time.Timer
	at time.Time // zero while disarmed
	// due is the schedule's own time for the run armed, before jitter:
	// the next one is reckoned from it, so runs do not drift.
	due time.Time
}

// arm sets the timer for at, the run due at due with jitter, replacing
// any earlier moment; fire runs then with at.
func (s *scheduleTimer) arm(due, at time.Time, fire func(at time.Time)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at, s.due = at, due
	if s.t == nil {
		s.t = time.AfterFunc(time.Until(at), func() {
			s.mu.Lock()
			due := s.at
			s.mu.Unlock()
			if !due.IsZero() {
				fire(due)
			}
		})
		return
	}
	s.t.Reset(time.Until(at))
}

// disarm stops the timer and reports whether it was armed.
func (s *scheduleTimer) disarm() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := !s.at.IsZero()
	if s.t != nil {
		s.t.Stop()
	}
	s.at = time.Time{}
	return was
}

// armedFor reports whether the timer is armed for at, and the schedule's
// time for that run.
func (s *scheduleTimer) armedFor(at time.Time) (due time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.due, !s.at.IsZero() && s.at.Equal(at)
}

func (s *scheduleTimer) armed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.at.IsZero()
}

// startSchedule is Start of a scheduled task with no run under way: it
// arms the schedule and answers at once, running the task now if a run
// came due since the last one began (the host was down, or the task
// stopped).
func (l *loop) startSchedule(r request) {
	defer func() { r.reply <- nil }()
	if l.p.sched.armed() {
		return
	}
	if l.st.State == Failed {
		l.clearCounters()
	}
	l.retry.stop()
	now, last := time.Now(), l.st.StartedAt
	if last.IsZero() { // never ran: the schedule starts now
		last = now
	}
	l.armSchedule(l.nextDue(last, now)) // from the last run, so "@every 1h" keeps its pace across a restart
	if !l.cfg.task.schedule.Next(last).After(now) {
		l.cfg.log.V(1).Info("a scheduled run came due while the task was not running; running it now", "lastRun", last)
		l.spawn(ReasonMissedRun, false)
		return
	}
	l.set(Waiting, ReasonScheduled, nil)
}

// armSchedule arms the schedule for the run due at due, with jitter.
func (l *loop) armSchedule(due time.Time) {
	at := due
	if j := l.cfg.task.jitter; j > 0 {
		at = at.Add(rand.N(j))
	}
	l.armScheduleAt(due, at)
}

// armScheduleAt arms the schedule to fire at at for the run due at due.
func (l *loop) armScheduleAt(due, at time.Time) {
	l.st.NextRunAt = at
	p := l.p
	p.sched.arm(due, at, func(at time.Time) {
		p.launchRequest(request{kind: reqScheduled, due: at}) //nolint:errcheck // a closed Process runs no more
	})
}

// nextDue is the schedule's first time after the run due at due, or
// after now when that has passed too (the host was suspended): missed
// times collapse into one run.
func (l *loop) nextDue(due, now time.Time) time.Time {
	next := l.cfg.task.schedule.Next(due)
	if !next.After(now) {
		next = l.cfg.task.schedule.Next(now)
	}
	return next
}

// disarmSchedule disarms the schedule and reports whether it was armed.
func (l *loop) disarmSchedule() bool {
	l.st.NextRunAt = time.Time{}
	return l.p.sched.disarm()
}

// onScheduled starts the run due at due, unless the schedule was
// disarmed or re-armed since, and arms the next one. A run still under
// way (or retrying in Backoff) makes this one skipped: runs never overlap.
func (l *loop) onScheduled(at time.Time) {
	due, ok := l.p.sched.armedFor(at)
	now := time.Now()
	if !ok || now.Before(at) {
		return
	}
	l.armSchedule(l.nextDue(due, now))
	if l.cur != nil || l.restart.armed() {
		l.cfg.log.Info("the previous run is still under way; skipping this one", "due", due)
		l.p.publish(l.st)
		return
	}
	l.spawn(ReasonScheduleDue, false)
}

// rescheduleIfChanged re-arms an armed schedule for new settings whose
// schedule differs, or disarms it when they have none.
func (l *loop) rescheduleIfChanged(old, cfg *settings) {
	if !l.p.sched.armed() || old.task != nil && cfg.task != nil && old.task.spec == cfg.task.spec {
		return
	}
	if cfg.task == nil || cfg.task.schedule == nil {
		l.disarmSchedule()
		return
	}
	l.armSchedule(cfg.task.schedule.Next(time.Now()))
}

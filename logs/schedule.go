package logs

import "time"

// nextRotation returns the next scheduled rotation after now, or the zero
// time when none is configured. Boundaries are recomputed from the wall
// clock at every firing, so clock steps and DST shifts are followed.
func (o *Options) nextRotation(now time.Time) time.Time {
	switch {
	case o.RotateEvery > 0:
		return now.Add(o.RotateEvery.Std())
	case o.RotateAt == "hourly":
		return now.Truncate(time.Hour).Add(time.Hour)
	case o.RotateAt == "daily":
		loc := time.UTC
		if o.LocalTime {
			loc = time.Local
		}
		t := now.In(loc)
		return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
	}
	return time.Time{}
}

// armSchedule sets the timer for the next scheduled rotation. The timer's
// function runs on a goroutine of its own only when it fires.
func (r *Rotator) armSchedule(now time.Time) {
	next := r.opts.nextRotation(now)
	if next.IsZero() {
		return
	}
	r.schedule = time.AfterFunc(next.Sub(now), r.scheduledRotation)
}

// scheduledRotation rotates if anything was written since the last
// rotation (an empty backup per period helps nobody) and re-arms.
func (r *Rotator) scheduledRotation() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if r.dirty {
		r.rotateLocked() //nolint:errcheck // failed() logged and counted it
	}
	r.armSchedule(time.Now())
}

package supervisor

import "time"

// timer is a one-shot timer that is either armed for a moment or idle; an
// idle timer's channel is nil, so a select on it never fires. The owner
// goroutine calls stop when it receives from C.
type timer struct {
	t    *time.Timer
	when time.Time
}

// C returns the channel that fires at the armed moment, or nil when idle.
func (t *timer) C() <-chan time.Time {
	if t.when.IsZero() {
		return nil
	}
	return t.t.C
}

// at arms the timer for when (at once if when has passed).
func (t *timer) at(when time.Time) {
	d := time.Until(when)
	if t.t == nil {
		t.t = time.NewTimer(d)
	} else {
		t.t.Reset(d) // since Go 1.23 no stale tick survives a Reset
	}
	t.when = when
}

func (t *timer) after(d time.Duration) { t.at(time.Now().Add(d)) }

func (t *timer) stop() {
	if t.t != nil {
		t.t.Stop()
	}
	t.when = time.Time{}
}

func (t *timer) armed() bool { return !t.when.IsZero() }

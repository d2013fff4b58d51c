package backoff

import (
	"time"

	"github.com/tend-dev/tend/config"
)

// Policy yields the delay before the next start after the n-th consecutive
// failed run. n >= 1; implementations treat smaller n as 1. A Policy must be
// safe for concurrent use and must never return a negative duration.
type Policy interface {
	Delay(n int) time.Duration
}

// Constant waits the same duration before every restart. A negative
// Constant is treated as zero by Delay and rejected by Validate.
type Constant time.Duration

// Delay returns d, whatever n is.
func (d Constant) Delay(int) time.Duration { return max(time.Duration(d), 0) }

// Validate reports a negative duration.
func (d Constant) Validate() error {
	if d < 0 {
		return config.Invalid("Constant", time.Duration(d), "must not be negative")
	}
	return nil
}

// None restarts at once every time: Constant(0).
func None() Policy { return Constant(0) }

// Func adapts a function to Policy. Delay clamps a negative result to zero,
// so a host function cannot make the supervisor misbehave.
type Func func(n int) time.Duration

// Delay calls f with n (at least 1) and clamps the result to >= 0.
func (f Func) Delay(n int) time.Duration { return max(f(max(n, 1)), 0) }

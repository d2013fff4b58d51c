package backoff

import (
	"math"
	"testing"
	"time"
)

// FuzzExponential checks that no combination of fields and n yields a delay
// below zero or above the effective cap, and that a policy passing Validate
// never exceeds its ceiling nor falls below its jitter floor.
func FuzzExponential(f *testing.F) {
	f.Add(1, int64(time.Second), int64(time.Minute), 2.0, 0.5, 0.3)
	f.Add(math.MaxInt, int64(1), int64(math.MaxInt64), 1e300, 1.0, 0.999)
	f.Add(0, int64(-5), int64(-5), math.NaN(), math.Inf(-1), -1.0)
	f.Fuzz(func(t *testing.T, n int, initial, limit int64, mult, jitter, u float64) {
		e := Exponential{Initial: time.Duration(initial), Max: time.Duration(limit),
			Multiplier: mult, Jitter: jitter, Rand: func() float64 { return u }}
		_, effMax, _ := e.effective()
		d := e.Delay(n)
		if d < 0 || d > effMax {
			t.Fatalf("%+v: Delay(%d) = %v outside [0, %v]", e, n, d, effMax)
		}
		if e.Validate() != nil {
			return
		}
		c := e.Ceiling(n)
		floor := time.Duration(float64(c)*(1-e.jitter())) - 1
		if d > c || d < floor {
			t.Fatalf("%+v: Delay(%d) = %v outside [%v, %v]", e, n, d, floor, c)
		}
	})
}

// FuzzSteps checks Steps never leaves [0, Max] and, when valid, never
// drops below Min.
func FuzzSteps(f *testing.F) {
	f.Add(1, int64(time.Second), int64(time.Minute), 5)
	f.Add(math.MaxInt, int64(1), int64(math.MaxInt64), 1)
	f.Fuzz(func(t *testing.T, n int, lo, hi int64, steps int) {
		s := Steps{Min: time.Duration(lo), Max: time.Duration(hi), Steps: steps}
		d := s.Delay(n)
		if d < 0 || d > max(s.Max, 0) {
			t.Fatalf("%+v: Delay(%d) = %v outside [0, Max]", s, n, d)
		}
		if s.Validate() == nil && d < s.Min {
			t.Fatalf("%+v: Delay(%d) = %v below Min", s, n, d)
		}
	})
}

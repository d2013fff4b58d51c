package backoff

import (
	"math"
	"time"

	"github.com/tend-dev/tend/config"
)

// Steps is systemd's RestartSteps curve: it climbs from Min to Max in Steps
// geometric steps, then stays at Max:
//
//	Delay(n) = Min * (Max/Min)^((n-1)/Steps)   for n <= Steps
//	Delay(n) = Max                             for n > Steps
//
// So Delay(1) is Min and Delay(Steps+1) is Max. Steps has no defaults: Min
// must be positive, Max at least Min, Steps at least 1 (see Validate). Delay
// on an invalid Steps returns Max clamped to zero, never a negative value.
type Steps struct {
	// Min is the first delay, like systemd's RestartSec.
	Min time.Duration
	// Max is the last delay, like systemd's RestartMaxDelaySec.
	Max time.Duration
	// Steps is the number of steps from Min to Max, like RestartSteps.
	Steps int
}

// Delay returns the interpolated delay for the n-th consecutive failure.
func (s Steps) Delay(n int) time.Duration {
	n = max(n, 1)
	if s.Steps < 1 || s.Min <= 0 || s.Max <= s.Min || n > s.Steps {
		return max(s.Max, 0)
	}
	ratio := float64(s.Max) / float64(s.Min)
	f := float64(s.Min) * math.Pow(ratio, float64(n-1)/float64(s.Steps))
	if !(f < float64(s.Max)) {
		return s.Max
	}
	return time.Duration(f)
}

// Validate reports a non-positive Min, a Max below Min and Steps below 1.
func (s Steps) Validate() error {
	switch {
	case s.Min <= 0:
		return config.Invalid("Min", s.Min, "must be positive")
	case s.Max < s.Min:
		return config.Invalid("Max", s.Max, "must not be less than Min ("+s.Min.String()+")")
	case s.Steps < 1:
		return config.Invalid("Steps", s.Steps, "must be at least 1")
	}
	return nil
}

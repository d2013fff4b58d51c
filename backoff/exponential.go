package backoff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tend-dev/tend/config"
)

// Defaults of Exponential, used for fields left at zero: the Kubernetes
// KEP-4603 curve, halved at random.
const (
	DefaultInitial    = time.Second
	DefaultMax        = 60 * time.Second
	DefaultMultiplier = 2.0
	DefaultJitter     = 0.5
)

// Exponential grows the delay geometrically up to a cap, then subtracts a
// random jitter:
//
//	ceiling(n) = min(Max, Initial * Multiplier^(n-1))
//	Delay(n)   = ceiling(n) * (1 - Jitter*U),  U uniform in [0, 1)
//
// so every delay lies in (ceiling*(1-Jitter), ceiling] and never exceeds Max.
// Jitter 1 is "full jitter" (anywhere from 0 to the ceiling); the default 0.5
// keeps a floor of half the ceiling, so a fleet of devices whose agents fail
// on one backend outage spreads its restarts without retrying too eagerly.
//
// The zero value is ready to use: Initial 1s, Multiplier 2, Max 60s (or
// Initial, when Initial is larger), Jitter 0.5. Set NoJitter for exact,
// repeatable delays. Delay never overflows, never returns NaN-derived values
// and never goes below zero or above Max for any n up to math.MaxInt, even
// when the fields are invalid; Validate reports invalid fields.
type Exponential struct {
	// Initial is the delay before the second restart of a streak. Zero means 1s.
	Initial time.Duration
	// Max caps every delay. Zero means max(60s, Initial).
	Max time.Duration
	// Multiplier is the growth factor per failed run, at least 1. Zero means 2.
	Multiplier float64
	// Jitter is the largest fraction of the ceiling subtracted at random, in
	// [0, 1]. Zero means 0.5 unless NoJitter is set.
	Jitter float64
	// NoJitter disables jitter: Delay(n) is exactly the ceiling.
	NoJitter bool
	// Rand returns a uniform random number in [0, 1). Nil means math/rand/v2's
	// Float64, which is safe for concurrent use; a replacement must be too.
	Rand func() float64
}

// Ceiling returns the delay for n without jitter: the largest value Delay(n)
// can return.
func (e Exponential) Ceiling(n int) time.Duration {
	initial, limit, mult := e.effective()
	f := float64(initial) * math.Pow(mult, float64(max(n, 1)-1))
	if !(f < float64(limit)) { // also catches +Inf and NaN
		return limit
	}
	return max(time.Duration(f), 0)
}

// Delay returns the ceiling for n minus the random jitter.
func (e Exponential) Delay(n int) time.Duration {
	c := e.Ceiling(n)
	j := e.jitter()
	if j == 0 || c == 0 {
		return c
	}
	random := rand.Float64
	if e.Rand != nil {
		random = e.Rand
	}
	u := min(max(random(), 0), 1)
	d := float64(c) * (1 - j*u)
	if !(d < float64(c)) { // float64(c) may round above MaxInt64
		return c
	}
	return time.Duration(d)
}

// Validate reports a negative duration, Max below Initial, Multiplier below 1
// and Jitter outside [0, 1], naming the field and the value.
func (e Exponential) Validate() error {
	return validateExponential(e.Initial, e.Max, e.Multiplier, e.Jitter, goFieldNames)
}

func (e Exponential) effective() (initial, limit time.Duration, mult float64) {
	initial, limit, mult = e.Initial, e.Max, e.Multiplier
	if initial == 0 {
		initial = DefaultInitial
	}
	if limit <= 0 {
		limit = max(DefaultMax, initial)
	}
	if mult == 0 {
		mult = DefaultMultiplier
	}
	return initial, limit, mult
}

func (e Exponential) jitter() float64 {
	switch {
	case e.NoJitter:
		return 0
	case e.Jitter == 0:
		return DefaultJitter
	case !(e.Jitter < 1): // also NaN
		return 1
	default:
		return max(e.Jitter, 0)
	}
}

// fieldNames names the four tunables of Exponential in the vocabulary of the
// caller: Go field names, or the config keys a user wrote.
type fieldNames struct{ initial, max, multiplier, jitter string }

var goFieldNames = fieldNames{"Initial", "Max", "Multiplier", "Jitter"}

func validateExponential(initial, limit time.Duration, mult, jitter float64, names fieldNames) error {
	switch {
	case initial < 0:
		return config.Invalid(names.initial, initial, "must not be negative")
	case limit < 0:
		return config.Invalid(names.max, limit, "must not be negative")
	case limit != 0 && limit < effectiveInitial(initial):
		return config.Invalid(names.max, limit, fmt.Sprintf("must not be less than %s (%s)", names.initial, effectiveInitial(initial)))
	case mult != 0 && !(mult >= 1) || math.IsInf(mult, 0):
		return config.Invalid(names.multiplier, mult, "must be a finite number >= 1")
	case !(jitter >= 0 && jitter <= 1):
		return config.Invalid(names.jitter, jitter, "must be within [0, 1]")
	}
	return nil
}

func effectiveInitial(initial time.Duration) time.Duration {
	if initial == 0 {
		return DefaultInitial
	}
	return initial
}

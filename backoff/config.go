package backoff

import (
	"github.com/tend-dev/tend/config"
)

// Config is the backoff part of a restart section as users write it in YAML
// or JSON:
//
//	restart:
//	  backoff_base: 10s
//	  backoff_max: 60s
//
// Embed it in a host's own struct to decode those keys in place; the json tags
// are the keys. Omitted keys take Exponential's defaults.
type Config struct {
	// Base is the first backoff delay (Exponential.Initial). Default 1s.
	// Under supervisor it is the wait before the *second* restart of a
	// failure streak: the first is immediate (as in the daemon config
	// format's original daemon), unless the restart section's first_delay
	// says otherwise. Readers of systemd's RestartSec, which delays the
	// first restart too, should set first_delay.
	Base config.Duration `json:"backoff_base,omitempty"`
	// Max caps every delay. Default max(60s, backoff_base).
	Max config.Duration `json:"backoff_max,omitempty"`
	// Multiplier is the growth per failed run, at least 1. Default 2.
	Multiplier float64 `json:"backoff_multiplier,omitempty"`
	// Jitter is the largest random fraction subtracted from each delay, in
	// [0, 1]. Absent means 0.5; 0 means exact delays.
	Jitter *float64 `json:"backoff_jitter,omitempty"`
}

var configFieldNames = fieldNames{"backoff_base", "backoff_max", "backoff_multiplier", "backoff_jitter"}

// Policy validates c and returns the Exponential it describes. Errors are
// *config.FieldError values naming the config key, e.g. "backoff_max".
func (c Config) Policy() (Exponential, error) {
	e := Exponential{Initial: c.Base.Std(), Max: c.Max.Std(), Multiplier: c.Multiplier}
	if c.Jitter != nil {
		e.Jitter = *c.Jitter
		e.NoJitter = *c.Jitter == 0
	}
	if err := validateExponential(e.Initial, e.Max, e.Multiplier, e.Jitter, configFieldNames); err != nil {
		return Exponential{}, err
	}
	return e, nil
}

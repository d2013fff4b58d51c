package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// such as "30s" or "1h30m". A bare JSON number is accepted too and read as
// whole seconds, because hand-written configs say `timeout: 30` meaning 30 s.
// Decoding never silently drops a value: anything else is an error that
// quotes the input.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string, e.g. "1m0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string ("250ms", "5s", "1h") or a number of
// seconds. null leaves d unchanged, like encoding/json does for other types.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("duration %s: %w", b, err)
		}
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"30s\" or a number of seconds", b)
	}
	v, err := secondsToDuration(secs)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses s with time.ParseDuration and wraps a failure in an
// error that quotes s.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a value such as \"30s\" or \"1m30s\": %w", s, err)
	}
	return Duration(v), nil
}

func secondsToDuration(secs float64) (Duration, error) {
	ns := secs * float64(time.Second)
	if !(ns < 0x1p63 && ns >= -0x1p63) { // also NaN; 2^63 itself overflows int64
		return 0, fmt.Errorf("duration %v seconds: out of range", secs)
	}
	return Duration(ns), nil
}

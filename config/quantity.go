package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Bytes is an amount of memory in bytes, written as Kubernetes writes
// quantities: a number with a binary suffix (Ki, Mi, Gi, Ti: powers of
// 1024) or a decimal one (k, M, G, T: powers of 1000), or a bare number
// of bytes: "512Mi", "1.5Gi", "200M", 1048576. Note that systemd reads
// "512M" as MiB; here it is 512,000,000 bytes, as in Kubernetes.
type Bytes int64

var byteSuffixes = []struct {
	suffix string
	factor float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// ParseBytes parses a memory quantity such as "512Mi"; the error quotes s.
func ParseBytes(s string) (Bytes, error) {
	num, factor := strings.TrimSpace(s), 1.0
	for _, u := range byteSuffixes {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, factor = rest, u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil || num != strings.TrimSpace(num):
		return 0, fmt.Errorf("memory quantity %q: want a number with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T, such as \"512Mi\"", s)
	case v < 0 || math.IsNaN(v):
		return 0, fmt.Errorf("memory quantity %q: must not be negative", s)
	case v*factor >= 1<<62:
		return 0, fmt.Errorf("memory quantity %q: out of range", s)
	}
	return Bytes(math.Ceil(v * factor)), nil
}

// String writes b in the largest binary unit that divides it ("512Mi").
func (b Bytes) String() string {
	for i := 3; i >= 0; i-- {
		u := byteSuffixes[i]
		if b != 0 && int64(b)%int64(u.factor) == 0 {
			return strconv.FormatInt(int64(b)/int64(u.factor), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalJSON writes b as its String.
func (b Bytes) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON reads a quantity string or a number of bytes.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	return unmarshalQuantity(data, func(s string) error {
		v, err := ParseBytes(s)
		*b = v
		return err
	})
}

// CPUs is CPU time in cores (1 = one core's worth per second), written as
// a number of cores (0.5), Kubernetes millicores ("500m") or a systemd
// CPUQuota= percentage ("50%").
type CPUs float64

// ParseCPUs parses a CPU quantity; the error quotes s.
func ParseCPUs(s string) (CPUs, error) {
	num, factor := strings.TrimSpace(s), 1.0
	if rest, ok := strings.CutSuffix(num, "m"); ok {
		num, factor = rest, 1e-3
	} else if rest, ok := strings.CutSuffix(num, "%"); ok {
		num, factor = rest, 1e-2
	}
	v, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil || num != strings.TrimSpace(num):
		return 0, fmt.Errorf("cpu quantity %q: want cores (0.5), millicores (\"500m\") or a percentage of one core (\"50%%\")", s)
	case v < 0 || math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("cpu quantity %q: must be a non-negative finite number", s)
	}
	return CPUs(v * factor), nil
}

// String writes c as a number of cores.
func (c CPUs) String() string { return strconv.FormatFloat(float64(c), 'g', -1, 64) }

// MarshalJSON writes c as a number of cores.
func (c CPUs) MarshalJSON() ([]byte, error) { return json.Marshal(float64(c)) }

// UnmarshalJSON reads a number of cores or a quantity string.
func (c *CPUs) UnmarshalJSON(data []byte) error {
	return unmarshalQuantity(data, func(s string) error {
		v, err := ParseCPUs(s)
		*c = v
		return err
	})
}

// unmarshalQuantity hands parse the JSON string, or the JSON number as
// written; null leaves the value unchanged.
func unmarshalQuantity(data []byte, parse func(string) error) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		return parse(s)
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("quantity %s: want a number or a string", data)
	}
	return parse(n.String())
}

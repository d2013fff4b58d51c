package supervisor

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Signal is a syscall.Signal that reads and writes as its name, so configs
// say `stop_signal: SIGINT` (or "INT", or the number 2). The zero value means
// "the field's default".
type Signal syscall.Signal

// String returns the signal's name, e.g. "SIGTERM", or "" for zero.
func (s Signal) String() string {
	if s == 0 {
		return ""
	}
	if name := unix.SignalName(syscall.Signal(s)); name != "" {
		return name
	}
	return "signal " + strconv.Itoa(int(s))
}

// MarshalJSON writes the signal's name.
func (s Signal) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads "SIGTERM", "TERM", "sigterm" or a number.
func (s *Signal) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		return s.set(n, string(b))
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("signal %s: want a name such as \"SIGTERM\" or a number", b)
	}
	v, err := ParseSignal(name)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s *Signal) set(n int, text string) error {
	if n < 1 || n > 64 {
		return fmt.Errorf("signal %s: not a signal number (1-64)", text)
	}
	*s = Signal(n)
	return nil
}

// ParseSignal parses a signal name with or without the SIG prefix, in any
// case, or a decimal number.
func ParseSignal(name string) (Signal, error) {
	if n, err := strconv.Atoi(name); err == nil {
		var s Signal
		return s, s.set(n, strconv.Quote(name))
	}
	upper := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(upper, "SIG") {
		upper = "SIG" + upper
	}
	if sig := unix.SignalNum(upper); sig != 0 {
		return Signal(sig), nil
	}
	return 0, fmt.Errorf("signal %q: unknown signal name", name)
}

func (s Signal) or(def syscall.Signal) syscall.Signal {
	if s == 0 {
		return def
	}
	return syscall.Signal(s)
}

package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
)

// Probe is one health check. Check returns nil when healthy, or an error
// that says why not. It must honour ctx: the Checker cancels it at Timeout.
type Probe interface {
	Check(ctx context.Context) error
}

// ProbeFunc adapts a function to Probe.
type ProbeFunc func(ctx context.Context) error

// Check calls f.
func (f ProbeFunc) Check(ctx context.Context) error { return f(ctx) }

// ErrNoProcess is returned (wrapped) by process probes when the PID source
// has no live process.
var ErrNoProcess = errors.New("no live process")

// ProcessAlive is healthy while pid() names a live process (not a zombie)
// that is the same process it first saw under that PID: a process that
// took over a recycled PID has another start time and is not "alive".
func ProcessAlive(pid func() int) Probe {
	p := &processAlive{pid: pid}
	return p
}

type processAlive struct {
	pid func() int

	mu      sync.Mutex
	seenPID int
	started uint64 // start time of seenPID, in clock ticks after boot
}

// Check fails for PID 0, a dead PID, a zombie, or a PID now held by
// another process than the one first seen under it.
func (p *processAlive) Check(context.Context) error {
	pid := p.pid()
	if pid <= 0 {
		return fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	if !st.Live() {
		return fmt.Errorf("pid %d is a zombie: %w", pid, ErrNoProcess)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pid != p.seenPID {
		p.seenPID, p.started = pid, st.StartTicks
		return nil
	}
	if st.StartTicks != p.started {
		return fmt.Errorf("pid %d now belongs to another process (started at tick %d, not %d): %w",
			pid, st.StartTicks, p.started, ErrNoProcess)
	}
	return nil
}

// Heartbeat is healthy while the last beat is younger than Timeout. The
// agent (or a HeartbeatServer on its behalf) calls Beat. It starts
// healthy, as if it had beaten when created: the agent deserves one
// Timeout to send its first beat.
type Heartbeat struct {
	timeout time.Duration

	mu   sync.Mutex
	last time.Time
}

// The daemon config format's defaults for heartbeats: an agent beats every 30s and is stale
// after 90s, three missed beats.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultHeartbeatTimeout  = 90 * time.Second
)

// NewHeartbeat returns a Heartbeat that goes stale timeout after the last
// beat; zero means DefaultHeartbeatTimeout.
func NewHeartbeat(timeout time.Duration) *Heartbeat {
	if timeout <= 0 {
		timeout = DefaultHeartbeatTimeout
	}
	return &Heartbeat{timeout: timeout, last: time.Now()}
}

// Beat marks the agent alive now.
func (h *Heartbeat) Beat() { h.BeatAt(time.Now()) }

// BeatAt marks the agent alive at t; a beat older than the last is ignored.
func (h *Heartbeat) BeatAt(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.After(h.last) {
		h.last = t
	}
}

// Last returns the time of the latest beat.
func (h *Heartbeat) Last() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Check fails when the last beat is older than the timeout.
func (h *Heartbeat) Check(context.Context) error {
	if age := time.Since(h.Last()); age > h.timeout {
		return fmt.Errorf("no heartbeat for %v (timeout %v)", age.Round(time.Millisecond), h.timeout)
	}
	return nil
}

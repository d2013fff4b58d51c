package supervisor

import (
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Reason says why a transition happened.
type Reason string

// The reasons a Process changes state.
const (
	ReasonStartRequested   Reason = "start requested"
	ReasonRestartRequested Reason = "restart requested"
	ReasonStopRequested    Reason = "stop requested"
	ReasonReady            Reason = "ready"             // alive StartSeconds
	ReasonStopped          Reason = "stopped"           // reaped after a requested stop
	ReasonExited           Reason = "exited"            // died without being asked to
	ReasonSpawnFailed      Reason = "spawn failed"      // exec failed
	ReasonBackoffElapsed   Reason = "backoff elapsed"   // restart delay over
	ReasonRestartLimit     Reason = "restart limit"     // MaxRestarts within RestartWindow
	ReasonPreventExitCode  Reason = "prevent exit code" // exit code in PreventExitCodes
	ReasonRetryFailed      Reason = "retry after failure"
	ReasonRestartBudget    Reason = "restart budget exhausted" // a Group delays the restart
)

// Event is one state transition of one Process.
type Event struct {
	// Name is the agent's name.
	Name string
	From State
	To   State
	// Reason says why; the exit behind it, if any, is Status.LastExit.
	Reason Reason
	// Status is the snapshot right after the transition.
	Status Status
	// Exits holds the recent exits that exhausted the restart limit, on the
	// transition to Failed for ReasonRestartLimit; nil otherwise.
	Exits []Exit
	// Time is when the transition happened.
	Time time.Time
	// Missed counts the events this subscriber lost just before this one
	// because it fell behind (see Process.Subscribe).
	Missed int
}

// String formats the event as `agent "x": running -> backoff (exited: exit code 1)`.
func (e Event) String() string {
	s := fmt.Sprintf("agent %q: %s -> %s (%s", e.Name, e.From, e.To, e.Reason)
	if e.Status.LastExit != nil && (e.Reason == ReasonExited || e.Reason == ReasonSpawnFailed || e.Reason == ReasonPreventExitCode || e.Reason == ReasonStopped) {
		s += ": " + e.Status.LastExit.String()
	}
	return s + ")"
}

// subscriberQueueLimit is how many undelivered events a subscriber may owe
// before the oldest are dropped (and counted in Event.Missed).
const subscriberQueueLimit = 1024

// subscriber delivers events to one hook, in order, on a goroutine that
// exists only while events are queued: an idle Process costs no goroutine
// per subscriber, and a slow hook delays nobody but itself.
type subscriber struct {
	fn  func(Event)
	log logr.Logger

	mu      sync.Mutex
	queue   []Event
	missed  int
	running bool
	closed  bool
}

func (s *subscriber) push(e Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= subscriberQueueLimit {
		s.queue = s.queue[1:]
		s.missed++
	}
	s.queue = append(s.queue, e)
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.deliver()
	}
}

func (s *subscriber) deliver() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.closed {
			s.queue, s.running = nil, false
			s.mu.Unlock()
			return
		}
		e := s.queue[0]
		s.queue = s.queue[1:]
		e.Missed, s.missed = s.missed, 0
		s.mu.Unlock()
		s.call(e)
	}
}

// call runs the hook; a panic in it is logged, not allowed to kill the host
// from a goroutine the host did not start.
func (s *subscriber) call(e Event) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "event hook panicked", "event", e.String())
		}
	}()
	s.fn(e)
}

func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	s.queue = nil
	s.mu.Unlock()
}

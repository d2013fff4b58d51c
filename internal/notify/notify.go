// Package notify delivers events to subscribers in order, each on a
// goroutine of its own that exists only while events are queued, so an
// idle publisher costs no goroutine per subscriber and a slow subscriber
// delays nobody but itself.
package notify

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
)

// QueueLimit is how many undelivered events a subscriber may owe before
// the oldest are dropped and counted.
const QueueLimit = 1024

// Subscriber calls one function with events of type E, in order.
type Subscriber[E any] struct {
	fn       func(E, int)
	describe func(E) string
	log      logr.Logger

	mu      sync.Mutex
	queue   []E
	missed  int
	running bool
	closed  bool
	idle    []chan struct{} // closed when delivery next stops (Drain)
	// dropped, for a List's subscriber, is the List's count of dropped
	// events, which outlives the subscriber.
	dropped *atomic.Int64
}

// New returns a Subscriber that calls fn with each event and the number of
// events dropped just before it because fn fell behind. A panic in fn is
// logged to log (with describe's rendering of the event) and delivery goes
// on: the goroutine is not the host's, so the panic must not kill it.
func New[E any](fn func(event E, missed int), describe func(E) string, log logr.Logger) *Subscriber[E] {
	return &Subscriber[E]{fn: fn, describe: describe, log: log}
}

// Push queues e and starts delivery if it is not running.
func (s *Subscriber[E]) Push(e E) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= QueueLimit {
		var zero E
		s.queue[0] = zero
		s.queue = s.queue[1:]
		s.missed++
		if s.dropped != nil {
			s.dropped.Add(1)
		}
	}
	s.queue = append(s.queue, e)
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.deliver()
	}
}

func (s *Subscriber[E]) deliver() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.closed {
			s.queue, s.running = nil, false
			for _, ch := range s.idle {
				close(ch)
			}
			s.idle = nil
			s.mu.Unlock()
			return
		}
		e := s.queue[0]
		s.queue = s.queue[1:]
		missed := s.missed
		s.missed = 0
		s.mu.Unlock()
		s.call(e, missed)
	}
}

func (s *Subscriber[E]) call(e E, missed int) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "event hook panicked", "event", s.describe(e))
		}
	}()
	s.fn(e, missed)
}

// Close stops delivery and drops what is queued; a call under way finishes.
func (s *Subscriber[E]) Close() {
	s.mu.Lock()
	s.closed = true
	s.queue = nil
	s.mu.Unlock()
}

// Drain waits until every event queued so far has been delivered and
// the call that delivered the last one has returned, or ctx ends.
func (s *Subscriber[E]) Drain(ctx context.Context) error {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	s.idle = append(s.idle, ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List is a set of subscribers that publishers fan events out to. Its zero
// value is ready; it is safe for concurrent use.
type List[E any] struct {
	mu      sync.Mutex
	subs    []*Subscriber[E]
	dropped atomic.Int64
}

// Dropped counts the events any subscriber of the List, past or present,
// lost by falling more than QueueLimit behind.
func (l *List[E]) Dropped() int64 { return l.dropped.Load() }

// Add subscribes fn and returns the function that unsubscribes it.
func (l *List[E]) Add(fn func(E, int), describe func(E) string, log logr.Logger) (cancel func()) {
	s := New(fn, describe, log)
	s.dropped = &l.dropped
	l.mu.Lock()
	l.subs = append(l.subs[:len(l.subs):len(l.subs)], s)
	l.mu.Unlock()
	return func() {
		s.Close()
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, x := range l.subs {
			if x == s {
				l.subs = append(l.subs[:i:i], l.subs[i+1:]...)
				return
			}
		}
	}
}

// Drain waits until every subscriber has been delivered every event
// published so far (see Subscriber.Drain), or ctx ends.
func (l *List[E]) Drain(ctx context.Context) error {
	l.mu.Lock()
	subs := l.subs
	l.mu.Unlock()
	for _, s := range subs {
		if err := s.Drain(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Publish queues e for every subscriber.
func (l *List[E]) Publish(e E) {
	l.mu.Lock()
	subs := l.subs
	l.mu.Unlock()
	for _, s := range subs {
		s.Push(e)
	}
}

package supervisor

import (
	"context"
	"sync/atomic"
	"time"
)

// How a readiness probe is polled while its child is Starting: every
// readyPollMin at first, backing off to readyPollMax, each call bounded by
// readyProbeTimeout. Nothing polls once the child is Running.
const (
	readyPollMin      = 50 * time.Millisecond
	readyPollMax      = time.Second
	readyProbeTimeout = 2 * time.Second
)

// readiness is how a Starting child's start criterion arrives: a
// Spec.Ready probe polled until it passes or is stopped, or READY=1 on
// the child's notify socket.
type readiness struct {
	cancel  context.CancelFunc
	passed  <-chan struct{} // closed when the child is ready
	lastErr atomic.Pointer[error]
}

// lastFailure is why the probe's latest call failed, "" if none did.
func (r *readiness) lastFailure() string {
	if r == nil {
		return ""
	}
	if err := r.lastErr.Load(); err != nil {
		return (*err).Error()
	}
	return ""
}

// readyOn is the readiness of a channel closed by someone else (the
// notify socket's reader): nothing to poll or stop.
func readyOn(ready <-chan struct{}) *readiness {
	return &readiness{cancel: func() {}, passed: ready}
}

func startReadiness(probe func(context.Context) error) *readiness {
	ctx, cancel := context.WithCancel(context.Background())
	passed := make(chan struct{})
	r := &readiness{cancel: cancel, passed: passed}
	go func() {
		wait := time.NewTimer(0)
		defer wait.Stop()
		for delay := readyPollMin; ; delay = min(2*delay, readyPollMax) {
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, readyProbeTimeout)
			err := probe(pctx)
			pcancel()
			if err == nil {
				close(passed)
				return
			}
			r.lastErr.Store(&err)
			wait.Reset(delay)
		}
	}()
	return r
}

// Passed returns the channel closed when the probe passed; nil on a nil
// readiness, so a select on it never fires.
func (r *readiness) Passed() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.passed
}

// stop ends the polling; a probe call under way sees its ctx cancelled.
func (r *readiness) stop() {
	if r != nil {
		r.cancel()
	}
}

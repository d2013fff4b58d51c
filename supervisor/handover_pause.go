package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// pausedAgent is a member whose supervision a hand-over has paused: its
// state and how to go on supervising it here if the exec fails.
type pausedAgent struct {
	state  agentState
	resume func()
}

// pauseRequest is the owner's part of a hand-over: it answers on paused
// and waits on resume, which is only closed if the exec failed.
type pauseRequest struct {
	paused chan<- pausedAgent
	resume <-chan struct{}
	err    chan<- error
}

// pause stops p's supervision for a hand-over and describes it. Its
// owner, if it has one, detaches the child's goroutines (exit waiter,
// output copiers, notify reader) without reaping it, so an exit that
// comes meanwhile waits in the kernel for the next binary; an idle
// Process is held idle (no call can start it) until resume.
func (p *Process) pause(ctx context.Context, held bool) (pausedAgent, error) {
	p.mu.Lock()
	gate := make(chan struct{})
	p.gate = gate
	l := p.active
	p.mu.Unlock()
	unblock := func() {
		p.mu.Lock()
		p.gate = nil
		p.mu.Unlock()
		close(gate)
	}
	if l != nil {
		paused, errc, resume := make(chan pausedAgent, 1), make(chan error, 1), make(chan struct{})
		select {
		case l.requests <- request{kind: reqPause, pause: &pauseRequest{paused: paused, resume: resume, err: errc}}:
			select {
			case a := <-paused:
				a.state.Held = held
				a.resume = func() { close(resume); unblock() }
				return a, nil
			case err := <-errc:
				unblock()
				return pausedAgent{}, err
			}
		case <-l.done: // it went idle meanwhile
		case <-ctx.Done():
			unblock()
			return pausedAgent{}, ctx.Err()
		}
	}
	a := p.idleState()
	a.state.Held, a.resume = held, unblock
	return a, nil
}

// idleState describes a Process without an owner.
func (p *Process) idleState() pausedAgent {
	p.mu.Lock()
	st := p.status
	p.mu.Unlock()
	a := pausedAgent{state: agentState{Name: p.name, Status: st}}
	p.files.describe(&a)
	return a
}

// errHandoverFake: a child that is no process (the timing tests' stand-in)
// cannot be handed over.
var errHandoverFake = errors.New("the child is not a process tend spawned")

// pause is the owner's side of Process.pause: it stops the child's
// goroutines, answers with the state and blocks until the hand-over is
// over. It returns only if the exec failed, with every goroutine of the
// child running again, as if nothing had happened.
func (l *loop) pause(r *pauseRequest) {
	var pending *Exit
	if l.cur != nil {
		c := l.cur.child
		if c == nil {
			r.err <- fmt.Errorf("agent %q: %w", l.cfg.name, errHandoverFake)
			return
		}
		e, exited, err := c.detach(l.cur.exited)
		if err != nil {
			r.err <- fmt.Errorf("agent %q: %w", l.cfg.name, err)
			return
		}
		if exited {
			pending = &e // reported after the exec, by whichever binary goes on
		}
	}
	a := l.describe(pending)
	r.paused <- a
	<-r.resume
	switch {
	case pending != nil:
		l.cur.exited = exitedWith(*pending)
	case l.cur != nil:
		l.cur.child.reattach(l.cfg)
	}
}

// exitedWith is an exit channel that already holds e.
func exitedWith(e Exit) <-chan Exit {
	ch := make(chan Exit, 1)
	ch <- e
	return ch
}

// describe is the owner's state for the hand-over; pending is the exit
// of a child that ended before it could be detached.
func (l *loop) describe(pending *Exit) pausedAgent {
	a := pausedAgent{state: agentState{
		Name: l.cfg.name, Status: l.st, Restarts: slices.Clone(l.restarts), RecentExits: slices.Clone(l.recentExits),
		RestartAt: l.restart.when, RetryAt: l.retry.when, StartAfter: l.startAfter,
		RestartFor: string(l.restartFor),
	}}
	l.p.files.describe(&a)
	if r := l.cur; r != nil {
		a.state.Contract = r.digest()
		cs := &childState{
			Killing: r.killing, Stopping: r.stopping, ReloadSent: r.reloadSent, Watchdog: r.watchdog,
			Unhealthy: r.unhealthy, ProbeFailure: r.probeFailure, Said: r.said.cross(),
			ReadyAt: r.ready.when, StableAt: r.stable.when, KillAt: r.kill.when, DogAt: r.dog.when, ReloadAt: r.reloadTimer.when,
			Exit: pending,
		}
		if op := r.reload; op != nil {
			cs.Reload = &reloadCross{SentSeq: op.sentSeq, SentMono: op.sentMono, Acked: op.acked}
		}
		if pending == nil && l.cfg.contract.parentDeathSignal != 0 {
			// Its forking thread ends with the exec, and the kernel sends
			// it its parent-death signal: the next binary restarts it as
			// a Restart would, SIGKILL if it outlives its StopTimeout.
			cs.Killing, cs.KillAt = killRequested, time.Now().Add(l.cfg.stopTimeout)
			a.state.StartAfter = true
		}
		if pending == nil {
			r.child.describe(cs)
		}
		a.state.Child = cs
	}
	return a
}

// describe adds the agent's listeners and stored descriptors, and its
// cgroup, to a.
func (f *agentFiles) describe(a *pausedAgent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for raw, l := range f.listeners {
		a.state.Listeners = append(a.state.Listeners, listenerState{Raw: raw, Name: l.Name(), FD: fdOf(l)})
	}
	slices.SortFunc(a.state.Listeners, func(x, y listenerState) int { return x.FD - y.FD })
	for _, s := range f.store.list() {
		a.state.Stored = append(a.state.Stored, storedState{Name: s.name, FD: fdOf(s.file)})
	}
	a.state.Cgroup, a.state.CgroupState = f.box.describe()
}

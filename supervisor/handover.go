package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/tend-dev/tend/internal/cgroup"
	"golang.org/x/sys/unix"
)

// Reasons of the event each agent emits when a binary takes it over from
// the one that handed it over (see Group.Handover).
const (
	// ReasonHandedOver: the agent is supervised by this binary from now
	// on, in the state it had (From and To are that state).
	ReasonHandedOver Reason = "handed over"
	// ReasonHandoverRejected: what was handed over could not be verified
	// (the child is not this process's own, another process has its PID,
	// a descriptor did not cross); what could safely be killed was, and
	// the agent is Stopped, to be started by Apply as a new agent. Its
	// LastExit.Err says why.
	ReasonHandoverRejected Reason = "hand-over rejected"
)

// Exec is the binary Group.Handover executes in place of the host's.
type Exec struct {
	// Path is the binary; the host's own executable if empty, which after
	// an upgrade replaced the file there is the new one.
	Path string
	// Args is its argument list, Args[0] included; os.Args if nil.
	Args []string
	// Env is its environment; os.Environ() if nil.
	Env []string
	// Files are the host's own descriptors to carry across (its listening
	// sockets, say), by name; the new binary gets each from
	// InheritedFile. They stay open, and the host's, here.
	Files map[string]*os.File
}

func (e Exec) resolve() (path string, args, env []string, err error) {
	path, args, env = e.Path, e.Args, e.Env
	if path == "" {
		if path, err = os.Executable(); err != nil {
			return "", nil, nil, fmt.Errorf("hand-over: the host's executable: %w", err)
		}
	}
	if args == nil {
		args = os.Args
	}
	if env == nil {
		env = os.Environ()
	}
	// Checked before anything is paused: the commonest failure (a path
	// the upgrade has not put in place) costs the agents nothing.
	if err := unix.Access(path, unix.X_OK); err != nil {
		return "", nil, nil, fmt.Errorf("hand-over: exec path %q: %w", path, err)
	}
	return path, args, env, nil
}

// Handover replaces the host's binary with next's, in the same process,
// without stopping or restarting any agent: systemd's daemon-reexec for a
// Group. Supervision of every member pauses (an owner answers no request
// and takes no decision; a child's exit waits unreaped in the kernel,
// its output in its pipes, its sd_notify messages in its socket); the
// Group's state is written for the new binary (per agent: its contract's
// digest, state, counters, restart times in the window, deadlines as
// absolute times, the child's PID, start time and boundary, its crash
// tail and the unfinished line of each output stream whose writer has a
// TakePartial method, as logs.Stream does); every descriptor that must
// survive is made inheritable: pidfds, output pipes, notify sockets,
// Listen sockets, stored descriptors, the instance locks (parent cgroup,
// FileStore) and next.Files; and next is executed.
//
// In the new binary the first NewGroup takes all of it over: it
// verifies each child (this process's child, same start time, same
// executable, its descriptors present) before trusting it, and kills
// and reaps, or cgroup-kills, what fails (ReasonHandoverRejected), never
// leaving it unsupervised. The agents are then claimed by name by the
// host's first Apply (or Launch, or Add), each emitting an event with
// ReasonHandedOver: an agent whose contract is unchanged goes on with
// the same child, counters and deadlines (ApplyResult.Resumed); one
// whose contract changed is restarted (Restarted). Until claimed, an
// agent's exit and output wait in the kernel; Group.Close kills what
// was never claimed.
//
// Handover returns only if it failed: the exec path is missing or not
// executable (nothing was paused), an agent could not be paused (a
// child waited for without a pidfd) or the exec failed; supervision then
// goes on in this binary as if nothing happened, with no event and no
// exit lost. An agent with ParentDeathSignal gets that signal at the
// exec, because the thread that forked it ends; the new binary starts
// it again, as Restart would. A host makes one call at a time; others
// (Apply, Start, Stop, ...) wait until the exec fails or forever.
// Linux only: elsewhere it fails and changes nothing.
func (g *Group) Handover(ctx context.Context, next Exec) error {
	path, args, env, err := next.resolve()
	if err != nil {
		return err
	}
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	g.removals.Wait()
	members := g.snapshot(nil)
	paused := make([]pausedAgent, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { paused[i], errs[i] = m.p.pause(ctx, m.held.Load()) })
	}
	wg.Wait()
	err = errors.Join(errs...)
	defer func() {
		for _, a := range paused {
			if a.resume != nil {
				a.resume()
			}
		}
	}()
	if err != nil {
		return fmt.Errorf("hand-over: %w", err)
	}
	// Every event of the paused agents reaches its subscribers first:
	// a queued one would die with this binary.
	if err := g.drainEvents(ctx, members); err != nil {
		return fmt.Errorf("hand-over: the Group's event subscribers have not taken every event: %w", err)
	}
	st := g.handoverState(paused)
	return execState(path, args, env, st, next.Files)
}

// execState execs path with st and the host's files, and returns only if
// that failed.
func execState(path string, args, env []string, st *handoverState, hostFiles map[string]*os.File) error {
	if len(hostFiles) > 0 {
		st.HostFiles = make(map[string]int, len(hostFiles))
		for name, f := range hostFiles {
			st.HostFiles[name] = fdOf(f)
		}
	}
	err := execHandover(path, args, env, st, st.fds())
	return fmt.Errorf("hand-over: %w; supervision goes on in this binary", err)
}

// Handover is Group.Handover for a lone Process (one made by New; a
// Group's member is handed over with its Group). In the new binary, New
// with a Spec of the same name takes the agent over as Apply would: its
// child goes on if its contract is unchanged (ReasonHandedOver), and is
// restarted if not. Until then its exit and output wait in the kernel,
// so a host calls New for it first thing.
func (p *Process) Handover(ctx context.Context, next Exec) error {
	if p.group != nil {
		return fmt.Errorf("agent %q: a Group's member is handed over by Group.Handover", p.name)
	}
	path, args, env, err := next.resolve()
	if err != nil {
		return err
	}
	a, err := p.pause(ctx, false)
	if err != nil {
		return fmt.Errorf("hand-over: %w", err)
	}
	defer a.resume()
	if err := p.subs.Drain(ctx); err != nil {
		return fmt.Errorf("hand-over: the agent's event subscribers have not taken every event: %w", err)
	}
	return execState(path, args, env, &handoverState{Version: stateVersion, Agents: []agentState{a.state}}, next.Files)
}

// claimHandedOver gives New the agent of its name that a lone Process
// handed over, verified (a child that fails is killed, and the agent
// starts anew), if no Group took the state first.
func claimHandedOver(name string) *inheritedAgent {
	inheritance.mu.Lock()
	defer inheritance.mu.Unlock()
	st := inheritance.state
	switch {
	case st == nil:
		return nil
	case inheritance.err != nil:
		abandon(st) // not a state this binary can trust
		inheritance.state, inheritance.err = nil, nil
		return nil
	}
	i := slices.IndexFunc(st.Agents, func(a agentState) bool { return a.Name == name })
	if i < 0 {
		return nil
	}
	ia := &inheritedAgent{state: st.Agents[i]}
	st.Agents = slices.Delete(st.Agents, i, i+1)
	ia.verify(nil) //nolint:errcheck // a lone Process has no cgroup; the rejection is in ia
	return ia
}

func (g *Group) drainEvents(ctx context.Context, members []*member) error {
	errs := []error{g.subs.Drain(ctx)}
	for _, m := range members {
		errs = append(errs, m.p.subs.Drain(ctx))
	}
	return errors.Join(errs...)
}

// handoverState gathers the Group's state for the next binary: the
// paused members, the inherited agents no Apply has claimed yet (a
// second hand-over right after the first) and the instance locks.
func (g *Group) handoverState(paused []pausedAgent) *handoverState {
	st := &handoverState{Version: stateVersion}
	for _, a := range paused {
		st.Agents = append(st.Agents, a.state)
	}
	g.mu.RLock()
	for _, ia := range g.inherited {
		st.Agents = append(st.Agents, ia.state)
	}
	g.mu.RUnlock()
	if p := g.contain.parent; p != nil {
		st.CgroupParent, st.CgroupLock = p.Name(), fdOf(p.LockFile())
	}
	if g.storeLock != nil {
		st.StoreLock = fdOf(g.storeLock)
	}
	return st
}

// fds lists every descriptor the state names.
func (st *handoverState) fds() []int {
	var fds []int
	for _, fd := range []int{st.CgroupLock, st.StoreLock} {
		if fd > 0 {
			fds = append(fds, fd)
		}
	}
	for _, fd := range st.HostFiles {
		fds = append(fds, fd)
	}
	for i := range st.Agents {
		fds = append(fds, st.Agents[i].fds()...)
	}
	return fds
}

// fds lists the descriptors of one agent's state.
func (a *agentState) fds() []int {
	var fds []int
	for _, l := range a.Listeners {
		fds = append(fds, l.FD)
	}
	for _, s := range a.Stored {
		fds = append(fds, s.FD)
	}
	if a.Child != nil {
		fds = append(fds, a.Child.fds()...)
	}
	return fds
}

// fds lists the descriptors of a child that was handed over alive.
func (cs *childState) fds() []int {
	if cs.Exit != nil {
		return nil
	}
	var fds []int
	if !cs.LeaderReaped {
		fds = append(fds, cs.PidFD)
	}
	if cs.MainPID != 0 {
		fds = append(fds, cs.MainPidFD)
	}
	for _, s := range cs.Streams {
		fds = append(fds, s.FD)
	}
	if cs.Notify != nil {
		fds = append(fds, cs.Notify.FD)
	}
	return fds
}

// inheritance is what a previous binary handed this process: read by
// the package's init on Linux, before any of the host's code runs, and
// taken by the first NewGroup (the state) and InheritedFile (the host's
// files).
var inheritance = struct {
	mu        sync.Mutex
	state     *handoverState // nil: none, or taken
	err       error          // why the state cannot be resumed
	hostFiles map[string]*os.File
	// owned are the descriptors of the state that did cross the exec;
	// set at init, read-only after.
	owned map[int]bool
}{hostFiles: map[string]*os.File{}}

// inherited reports whether fd is a descriptor that crossed the exec.
func inherited(fd int) bool { return inheritance.owned[fd] }

// InheritedFile returns the descriptor the binary that handed this
// process over passed as Exec.Files[name], once (later calls return
// nil), or nil if there is none. It works whatever that binary's
// version of tend, so a host's listener always crosses.
func InheritedFile(name string) *os.File {
	inheritance.mu.Lock()
	defer inheritance.mu.Unlock()
	f := inheritance.hostFiles[name]
	delete(inheritance.hostFiles, name)
	return f
}

// takeInheritance hands the state to its one taker.
func takeInheritance() (*handoverState, error) {
	inheritance.mu.Lock()
	defer inheritance.mu.Unlock()
	st, err := inheritance.state, inheritance.err
	inheritance.state, inheritance.err = nil, nil
	return st, err
}

// inheritedAgent is an agent a previous binary handed over, verified,
// waiting for the Apply or Add that names it.
type inheritedAgent struct {
	state agentState
	// rejected says why its child could not be trusted ("" if it can).
	rejected string
	// cg and leaf are its cgroup and its child's leaf, taken over.
	cg   *cgroup.Agent
	leaf *cgroup.Leaf
}

// stateVersion is the version Handover writes: handoverVersion, except
// in the tests of a binary handed a state it cannot read.
var stateVersion = handoverVersion

// errDetached ends a waiter that a hand-over stopped before the child's end.
var errDetached = errors.New("detached for a hand-over")

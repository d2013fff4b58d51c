package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/cgroup"
)

// takeOver is NewGroup for a binary that was handed a Group: it keeps the
// instance locks that crossed the exec (nothing is swept: what runs is
// this host's), verifies every agent's child and holds the agents for the
// Apply or Add that claims them. The Group's containment is the one
// handed over, whatever opts.Containment says now: the agents run in it.
func (g *Group) takeOver(st *handoverState, opts GroupOptions) error {
	var err error
	if g.storeLock, err = resumeStoreLock(opts.Store, st.StoreLock); err != nil {
		abandon(st)
		return err
	}
	if st.CgroupParent != "" {
		if g.contain, err = resumeContainment(st); err != nil {
			abandon(st)
			g.storeLock.Close()
			return fmt.Errorf("containment: %w", err)
		}
	} else {
		g.contain = containment{why: fmt.Errorf("the binary that handed the agents over kept them in process groups")}
	}
	inherited := make([]*inheritedAgent, len(st.Agents))
	eachParallel(len(st.Agents), func(i int) {
		inherited[i] = g.takeOverAgent(st.Agents[i])
	})
	g.inherited = make(map[string]*inheritedAgent, len(st.Agents))
	for _, ia := range inherited {
		g.inherited[ia.state.Name] = ia
	}
	g.log.V(1).Info("took over agents from the previous binary", "agents", len(st.Agents))
	return nil
}

// takeOverAgent verifies one handed-over agent's child, killing it if it
// cannot be trusted, and takes over its cgroup.
func (g *Group) takeOverAgent(a agentState) *inheritedAgent {
	ia := &inheritedAgent{state: a}
	if err := ia.verify(g.contain.parent); err != nil {
		g.log.Error(err, "cannot trust the child handed over; killed it", "agent", a.Name)
		return ia
	}
	if a.Cgroup == "" || g.contain.parent == nil {
		return ia
	}
	var leaf string
	if c := a.Child; c != nil && c.Exit == nil {
		leaf = c.Leaf
	}
	var err error
	if ia.cg, ia.leaf, err = g.contain.parent.ResumeAgent(a.Name, a.CgroupState, leaf); err != nil {
		g.log.Error(err, "cannot take over the agent's cgroup; its next child gets a new one", "agent", a.Name)
	}
	return ia
}

// eachParallel runs fn(0..n-1) on a few goroutines: the checks and
// cgroup reads of a thousand agents are system calls that wait on the
// kernel, not on the CPU.
func eachParallel(n int, fn func(i int)) {
	workers := min(n, 4*runtime.GOMAXPROCS(0))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// resumeStoreLock keeps the FileStore lock that crossed the exec if it is
// the lock of the Store this Group is given; otherwise it lets it go and
// locks the Store afresh.
func resumeStoreLock(s Store, fd int) (*os.File, error) {
	if !inherited(fd) {
		return lockStore(s)
	}
	held := os.NewFile(uintptr(fd), "state store lock")
	if fs, ok := s.(*FileStore); ok && sameFile(held, fs.path+".lock") {
		return held, nil
	}
	held.Close()
	return lockStore(s)
}

func sameFile(f *os.File, path string) bool {
	a, errA := f.Stat()
	b, errB := os.Stat(path)
	return errA == nil && errB == nil && os.SameFile(a, b)
}

func resumeContainment(st *handoverState) (containment, error) {
	if !inherited(st.CgroupLock) {
		return containment{}, fmt.Errorf("the lock of cgroup parent %s did not cross the exec", st.CgroupParent)
	}
	lock := os.NewFile(uintptr(st.CgroupLock), "cgroup parent lock")
	h, err := cgroup.Detect()
	if err != nil {
		lock.Close()
		return containment{}, err
	}
	parent, err := cgroup.Resume(h, st.CgroupParent, lock)
	if err != nil {
		lock.Close()
		return containment{}, err
	}
	return containment{parent: parent}, nil
}

// verify checks the agent's child (verifyChild); one that cannot be
// trusted is killed (kill) and the agent marked rejected.
func (ia *inheritedAgent) verify(parent *cgroup.Parent) error {
	c := ia.state.Child
	if c == nil {
		return nil
	}
	err := verifyChild(c)
	if err != nil {
		ia.rejected = err.Error()
		ia.kill(parent)
	}
	return err
}

// kill kills what an inherited agent's child left, as far as it can be
// told apart from other processes (in parent's cgroup, if given), and
// closes the descriptors that came with it: a rejected child, or one
// never claimed.
func (ia *inheritedAgent) kill(parent *cgroup.Parent) {
	c := ia.state.Child
	if c == nil || c.Exit != nil {
		return
	}
	killUnverified(c)
	if c.Leaf != "" && parent != nil {
		if _, leaf, err := parent.ResumeAgent(ia.state.Name, ia.state.CgroupState, c.Leaf); err == nil {
			leaf.Kill()         //nolint:errcheck // an empty leaf is fine
			leaf.WaitEmpty(nil) // no stuck report: it is logged with the rejection
			leaf.Remove()       //nolint:errcheck // a leaf in use stays, and blocks the agent's next start with a clear error
		}
	}
	closeFDs(c.fds())
	ia.state.Child = nil
}

// dropInherited kills and closes what no Apply claimed; Group.Close.
func (g *Group) dropInherited() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, ia := range g.inherited {
		g.log.Info("stopping an agent handed over that no Apply claimed", "agent", name)
		ia.kill(g.contain.parent)
		closeFDs(ia.state.fds())
		delete(g.inherited, name)
	}
}

// abandon is the end of a state this binary cannot resume (another
// version, unreadable): every descriptor it names is closed (the instance
// locks with them, so the Group sweeps as after a crash) and every child
// of this process, all of which the previous binary started, is killed
// with its process group and reaped. The host's own files stay.
func abandon(st *handoverState) {
	if st != nil {
		hostFDs := make(map[int]bool, len(st.HostFiles))
		for _, fd := range st.HostFiles {
			hostFDs[fd] = true
		}
		closeFDs(slices.DeleteFunc(slices.Clone(st.FDs), func(fd int) bool { return hostFDs[fd] }))
	}
	for _, pid := range ownChildren() {
		syscall.Kill(-pid, syscall.SIGKILL) //nolint:errcheck // not a group leader: the next line
		syscall.Kill(pid, syscall.SIGKILL)  //nolint:errcheck // unreaped, so the PID is still the child's
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil) //nolint:errcheck // ECHILD: already reaped
	}
}

// closeFDs closes those of fds that crossed the exec, never a number
// this binary has opened something else under.
func closeFDs(fds []int) {
	for _, fd := range fds {
		if inherited(fd) {
			syscall.Close(fd)
		}
	}
}

// handoverOutcome is what claiming an agent found.
type handoverOutcome int

const (
	notHandedOver   handoverOutcome = iota
	resumedSame                     // the same contract: supervision goes on
	resumedChanged                  // the contract changed: to be restarted
	handoverRefused                 // its child could not be trusted: started anew
)

// resume makes p, just registered, the agent ia describes: its listeners,
// stored descriptors and cgroup, its counters and timers, and its child,
// whose goroutines start again. It emits ReasonHandedOver (or
// ReasonHandoverRejected) before anything else can happen to p.
func (p *Process) resume(ia *inheritedAgent) handoverOutcome {
	a := &ia.state
	st := a.Status
	st.Limits = p.cfg.resources
	l := newLoop(p, st)
	l.restarts, l.recentExits = a.Restarts, a.RecentExits
	p.files.restore(a)
	if ia.rejected != "" {
		l.st.PID, l.st.LeaderStart, l.st.NotifyStatus, l.st.Reloading = 0, 0, "", false
		l.st.LastExit = &Exit{Code: -1, Err: "hand-over: " + ia.rejected, Time: time.Now()}
		l.set(Stopped, ReasonHandoverRejected, nil)
		return handoverRefused
	}
	if ia.cg != nil && p.files.box != nil {
		p.files.box.adopt(ia.cg, a.Status.Limits.limits())
		if err := p.files.box.setLimits(p.cfg.resources.limits()); err != nil {
			p.cfg.log.Error(err, "cannot apply the agent's new limits to its running tree")
		}
	}
	if a.Child != nil {
		l.cur = l.resumeRun(a, ia.cg, ia.leaf)
	}
	l.restart.rearm(a.RestartAt)
	l.retry.rearm(a.RetryAt)
	if ts := p.cfg.task; ts != nil && ts.schedule != nil && !st.NextRunAt.IsZero() {
		l.armScheduleAt(st.NextRunAt, st.NextRunAt) // the schedule's own time is not handed over: at most one jitter of drift
	}
	l.startAfter, l.restartFor = a.StartAfter, restartCause(a.RestartFor)
	outcome := resumedSame
	if l.cur != nil && l.cur.digest() != p.cfg.contract.digest() {
		outcome = resumedChanged
	}
	l.set(st.State, ReasonHandedOver, nil)
	if l.busy() {
		p.mu.Lock()
		p.active = l
		p.mu.Unlock()
		go l.run() // from here on l is the owner's alone
	}
	return outcome
}

// resumeRun rebuilds the run of a handed-over child.
func (l *loop) resumeRun(a *agentState, cg *cgroup.Agent, leaf *cgroup.Leaf) *run {
	cs := a.Child
	r := &run{contract: l.cfg.contract, handedDigest: a.Contract, killing: cs.Killing, said: cs.Said.snapshot(),
		watchdog: cs.Watchdog, stopping: cs.Stopping, reloadSent: cs.ReloadSent, unhealthy: cs.Unhealthy, probeFailure: cs.ProbeFailure}
	if cs.Exit != nil {
		r.spawned = spawned{pid: a.Status.PID, leaderStart: a.Status.LeaderStart, started: a.Status.StartedAt,
			exited: exitedWith(*cs.Exit), boundary: a.Status.Boundary,
			signal: func(syscall.Signal, bool) error { return os.ErrProcessDone }}
	} else {
		r.spawned = resumeChild(l.cfg, &l.p.files, cs, cg, leaf).spawned()
	}
	if op := cs.Reload; op != nil {
		r.reload = &reloadOp{sentSeq: op.SentSeq, sentMono: op.SentMono, acked: op.Acked}
	}
	r.ready.rearm(cs.ReadyAt)
	r.stable.rearm(cs.StableAt)
	r.kill.rearm(cs.KillAt)
	r.dog.rearm(cs.DogAt)
	r.reloadTimer.rearm(cs.ReloadAt)
	if l.st.State == Starting && cs.Exit == nil {
		switch {
		case r.notify != nil:
			r.readiness = readyOn(r.notify.ready)
		case l.cfg.ready != nil:
			r.readiness = startReadiness(l.cfg.ready)
		}
	}
	return r
}

// restore takes the listeners and stored descriptors a hand-over carried.
func (f *agentFiles) restore(a *agentState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range a.Listeners {
		if !inherited(l.FD) {
			continue // bound again for the next child
		}
		if f.listeners == nil {
			f.listeners = make(map[string]*os.File)
		}
		f.listeners[l.Raw] = os.NewFile(uintptr(l.FD), l.Name)
	}
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	for _, s := range a.Stored {
		if inherited(s.FD) {
			f.store.files = append(f.store.files, namedFile{name: s.Name, file: os.NewFile(uintptr(s.FD), s.Name)})
		}
	}
	f.store.max = max(f.store.max, len(a.Stored))
}

package supervisor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/cgroup"
	"github.com/tend-dev/tend/internal/listenexec"
)

// child is one spawned instance of an agent: the leader of its own process
// group and, for a contained agent, of a cgroup leaf that holds its whole
// tree. Its waiter goroutine is the only code that reaps it; signals are
// sent under mu and only while the leader is unreaped, so neither its PID
// nor its group ID can name a recycled process.
type child struct {
	h           procHandle
	pid         int
	leaderStart uint64 // read while the leader is unreaped, so it is the leader's
	started     time.Time
	// leaf holds the child and everything it forks, in the agent's cgroup
	// cg; nil for a child in a process group only.
	leaf      *cgroup.Leaf
	cg        *cgroup.Agent
	oomBefore uint64 // the agent's OOM kills before this child

	mu     sync.Mutex
	reaped bool       // the run is over: no signal may be sent
	main   *successor // the main process the child named with MAINPID=, if any
	// following: the leader is reaped and the run ends with main.
	following bool
	// detaching: a hand-over is stopping the waiter (see detach).
	detaching bool
	detached  chan struct{} // closed when the waiter stopped for a hand-over

	out    childOutput
	notify *notifySocket // with Spec.NotifyReady; closed after the exit
	tail   *tailBuffer
	done   chan Exit // receives exactly one Exit
}

// spawn starts the agent in its own process group (and, for a Group's
// contained member, straight into a leaf of its cgroup, with its limits
// already applied) with stdin on /dev/null, hands it the agent's
// listeners and stored descriptors, starts draining
// its piped output and waiting for its exit. It must run on a goroutine
// tend owns (see Spec.ParentDeathSignal).
func spawn(s *settings, af *agentFiles) (_ *child, err error) {
	c := &child{done: make(chan Exit, 1), tail: newTailBuffer(s.tailBytes), detached: make(chan struct{})}
	var parentCopies []*os.File // closed once the child has its own
	defer func() { closeFiles(parentCopies) }()
	defer func() {
		if err != nil {
			c.out.closePipes()
			c.notify.close()
			if c.leaf != nil {
				c.leaf.Remove() //nolint:errcheck // nothing ran in it
			}
		}
	}()
	if af.box != nil {
		if c.cg, c.leaf, err = af.box.newLeaf(s.resources.limits()); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		c.oomBefore = c.cg.OOMKills()
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	parentCopies = append(parentCopies, devNull)
	// Every child gets fds 0, 1 and 2: a closed one would become the
	// first file the child opens.
	files := []*os.File{devNull, devNull, devNull}
	for i, stream := range []struct {
		name string
		w    io.Writer
	}{{"stdout", s.stdout}, {"stderr", s.stderr}} {
		if f, ok := stream.w.(*os.File); ok {
			files[i+1] = f
			continue
		}
		if stream.w == nil && c.tail == nil {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("%s pipe: %w", stream.name, err)
		}
		files[i+1] = w
		parentCopies = append(parentCopies, w)
		c.out.add(r, stream.w, stream.name)
	}
	passed, err := af.passed(s.name, s.contract.listen)
	if err != nil {
		return nil, err
	}
	env := slices.Clip(s.contract.env)
	if s.contract.notifyReady {
		var store *fdStore
		af.store.setMax(s.fdStoreMax)
		if s.fdStoreMax > 0 {
			store = &af.store
		}
		if c.notify, err = newNotifySocket(s.contract.cred, store); err != nil {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
		env = append(env, c.notify.env(s.contract.watchdog)...)
	}
	path, argv := s.contract.path, append([]string{s.contract.path}, s.contract.args...)
	if len(passed) > 0 {
		names := make([]string, len(passed))
		for i, f := range passed {
			files = append(files, f.file)
			names[i] = f.name
		}
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(passed)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
		argv, env = listenexec.Command(path, argv, env)
		path = listenexec.Self
	}
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	c.h, err = startProcess(s, path, argv, env, fds, c.cg, c.leaf)
	runtime.KeepAlive(files)
	c.leaf.Spawned()
	if err != nil {
		if path == listenexec.Self {
			err = fmt.Errorf("%w (an agent handed sockets is started through the host's own binary, which its user must be able to execute)", err)
		}
		return nil, err
	}
	c.pid, c.started = c.h.pid, time.Now()
	c.leaderStart = startTicks(c.pid)
	if c.notify != nil {
		c.notify.leader, c.notify.member, c.notify.adopt = c.pid, c.isMember, c.adopt
		go c.notify.read() // ends when the waiter closes the socket
	}
	c.out.start(c.tail, s.log)
	go c.wait(s)
	return c, nil
}

// boundary describes what holds the child's processes.
func (c *child) boundary() string {
	if c.leaf != nil {
		return "cgroup " + c.leaf.Path()
	}
	return "process group " + strconv.Itoa(c.pid)
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// signalGroup sends sig to every process in the child's group, unless the
// leader has been reaped (then the group ID may already be recycled).
// SIGKILL goes to the child's whole cgroup leaf instead, if it has one,
// so that descendants that left the group die with it.
func (c *child) signalGroup(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.reaped:
		return os.ErrProcessDone
	case sig == syscall.SIGKILL && c.leaf != nil:
		return c.leaf.Kill()
	}
	return syscall.Kill(-c.pid, sig)
}

// signalLeader sends sig to the main process alone: the leader, or the
// process named with MAINPID=; never once the run is over.
func (c *child) signalLeader(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.reaped:
		return os.ErrProcessDone
	case c.main != nil:
		return c.main.signal(sig)
	}
	return c.h.signal(sig)
}

// adopt makes pid, a live process of the child's group, its main process
// (MAINPID=): signals for the main process go there, and the leader's
// exit no longer ends the run; the successor's does.
func (c *child) adopt(pid int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.reaped:
		return os.ErrProcessDone
	case c.main != nil && c.main.pid == pid:
		return nil
	case pid == c.pid: // back to the leader, which is still alive: the reader checked
		c.dropSuccessor()
		return nil
	}
	s, err := openSuccessor(pid, c.isMember)
	if err != nil {
		return fmt.Errorf("MAINPID=%d: %w", pid, err)
	}
	c.dropSuccessor() // ends followSuccessors' wait on it
	c.main = s
	return nil
}

// dropSuccessor forgets a successor that is not followed; under mu.
func (c *child) dropSuccessor() {
	if c.main != nil {
		c.main.close()
		c.main = nil
	}
}

// followSuccessors waits, once the leader is reaped, for the end of the
// process the child named its main one, following later MAINPID=s, and
// returns its status where the kernel keeps it.
func (c *child) followSuccessors() (syscall.WaitStatus, error) {
	for {
		c.mu.Lock()
		s := c.main
		c.mu.Unlock()
		s.waitExited()
		c.mu.Lock()
		if c.detaching {
			c.mu.Unlock()
			return 0, errDetached
		}
		if c.main != s { // another MAINPID= came while waiting
			c.mu.Unlock()
			continue
		}
		c.reaped, c.main = true, nil
		c.mu.Unlock()
		ws, ok := s.exitStatus()
		s.close()
		if !ok {
			return 0, fmt.Errorf("main process %d (MAINPID=) ended, its status unknown: it was not tend's child", s.pid)
		}
		return ws, nil
	}
}

// awaitEnd waits for the end of the child's main process: the leader,
// reaped once the group is killed, or the MAINPID= successor it handed
// over to. errDetached: a hand-over stopped the wait first.
func (c *child) awaitEnd(s *settings) (ws syscall.WaitStatus, err error) {
	if c.following { // resumed after a hand-over, the leader long reaped
		return c.followSuccessors()
	}
	werr := c.h.waitExited()
	switch {
	case errors.Is(werr, os.ErrDeadlineExceeded):
		return 0, errDetached
	case werr == nil:
		c.mu.Lock()
		handedOver := c.main != nil && c.main.signal(0) == nil
		if !handedOver {
			if c.leaf == nil { // a leaf is killed after the reap, in endTree
				syscall.Kill(-c.pid, syscall.SIGKILL) //nolint:errcheck // ESRCH: nothing left
			}
			c.dropSuccessor()
		}
		ws, err = c.h.reap()
		c.reaped = !handedOver || err != nil
		c.following = handedOver && err == nil
		c.mu.Unlock()
		if c.following {
			// The leader's exit is not the agent's: its successor, still
			// in the group, keeps the group ID from being recycled.
			return c.followSuccessors()
		}
		return ws, err
	}
	// Without a non-reaping wait the group is killed after the reap,
	// in waitGroupGone; never hold mu across a blocking wait.
	s.log.V(1).Info("waiting without reaping failed; reaping directly", "error", werr.Error())
	ws, err = c.h.reap()
	c.mu.Lock()
	c.reaped = true
	c.dropSuccessor()
	c.mu.Unlock()
	return ws, err
}

// wait is the child's waiter goroutine: it learns of the leader's exit
// without reaping it, kills what is left of the group while the group ID is
// still pinned by the unreaped leader, reaps, waits until no live member of
// the group remains, copies what the group left in the output pipes, and
// delivers the Exit. Output an escaped descendant writes later is still
// copied, for drainTimeout, after the Exit is out.
func (c *child) wait(s *settings) {
	ws, err := c.awaitEnd(s)
	if errors.Is(err, errDetached) {
		close(c.detached)
		return
	}
	c.h.release() // signals check reaped under mu first, so none uses it now
	exit := Exit{Time: time.Now(), Code: -1}
	exit.Ran = exit.Time.Sub(c.started)
	if err != nil {
		exit.Err = err.Error()
	} else {
		describeStatus(ws, &exit)
	}
	c.endTree(s, &exit)
	c.out.flush()
	c.notify.flush()
	c.notify.close()
	exit.Tail = c.tail.String()
	c.done <- exit
	c.out.finish()
}

// endTree kills what is left of the child once its main process is gone
// and waits until none of it runs. In a cgroup leaf that is everything
// the child forked, wherever it went (KillMode=control-group): the Exit
// counts the processes that were left, and says whether the OOM killer
// struck; the leaf is then removed. Without one, it is the process group.
func (c *child) endTree(s *settings, exit *Exit) {
	if c.leaf == nil {
		waitGroupGone(c.pid, s.log)
		return
	}
	// With no live process left, none can fork: nothing to kill.
	if left, err := c.leaf.Procs(); err != nil || len(left) > 0 {
		exit.Leftovers = len(left)
		s.log.Info("the agent's main process is gone; killing what it left in its cgroup", "pids", left)
		if err := c.leaf.Kill(); err != nil {
			s.log.Error(err, "cannot kill the agent's cgroup")
		}
	}
	c.leaf.WaitEmpty(func(pids []int) {
		s.log.Error(errors.New("cgroup members survive SIGKILL"),
			"agent's processes are stuck (uninterruptible sleep?); waiting for them before the next start",
			"cgroup", c.leaf.Path(), "pids", pids)
	})
	exit.OOMKilled = c.cg.OOMKills() > c.oomBefore
	if err := c.leaf.Release(); err != nil {
		s.log.Error(err, "cannot remove a child's cgroup")
	}
}

func describeStatus(ws syscall.WaitStatus, exit *Exit) {
	switch {
	case ws.Exited():
		exit.Code = ws.ExitStatus()
	case ws.Signaled():
		exit.Signal = Signal(ws.Signal())
		exit.CoreDumped = ws.CoreDump()
	}
}

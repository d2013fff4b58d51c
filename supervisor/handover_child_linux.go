package supervisor

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/internal/cgroup"
	"github.com/tend-dev/tend/internal/procfs"
	"golang.org/x/sys/unix"
)

// pastDeadline interrupts a read parked in the netpoller at once.
var pastDeadline = time.Unix(1, 0)

// detach stops the child's goroutines for a hand-over without reaping
// it: first its waiter, so an exit from now on stays in the kernel (the
// leader unreaped) for the next binary to see; then its output copiers,
// at a read boundary, taking the unfinished line from each writer that
// holds one (partialHolder); then its notify reader, leaving unread
// messages queued in the socket. If the child's end came first, the
// waiter finishes its usual work and detach returns its Exit instead.
func (c *child) detach(exited <-chan Exit) (Exit, bool, error) {
	c.mu.Lock()
	c.detaching = true
	err := c.h.interruptWait()
	if c.main != nil {
		c.main.pidfd.SetReadDeadline(pastDeadline) //nolint:errcheck // a pidfd is pollable
	}
	c.mu.Unlock()
	if err != nil {
		c.mu.Lock()
		c.detaching = false
		c.mu.Unlock()
		return Exit{}, false, err
	}
	select {
	case <-c.detached:
	case e := <-exited:
		return e, true, nil
	}
	c.out.detach()
	c.notify.detach()
	return Exit{}, false, nil
}

// reattach undoes detach, in the binary that detached the child (the
// exec failed): every goroutine of the child runs again.
func (c *child) reattach(s *settings) {
	c.mu.Lock()
	c.detaching = false
	c.h.resumeWait()
	if c.main != nil {
		c.main.pidfd.SetReadDeadline(time.Time{}) //nolint:errcheck // as in detach
	}
	c.mu.Unlock()
	c.detached = make(chan struct{})
	c.out.reattach(c.tail, s.log)
	c.notify.reattach()
	go c.wait(s)
}

// describe fills in what the next binary needs of the detached child.
func (c *child) describe(cs *childState) {
	cs.PID, cs.LeaderStart, cs.Started, cs.OOMBefore = c.pid, c.leaderStart, c.started, c.oomBefore
	cs.Tail = []byte(c.tail.String())
	if c.following {
		cs.LeaderReaped, cs.PidFD = true, -1
	} else {
		cs.PidFD = fdOf(c.h.pidfd)
		cs.Exe, _ = os.Readlink("/proc/" + strconv.Itoa(c.pid) + "/exe") // unreaped: the PID is still the child's
	}
	if c.leaf != nil {
		cs.Leaf = c.leaf.Path()
	}
	if c.main != nil {
		cs.MainPID, cs.MainPidFD = c.main.pid, fdOf(c.main.pidfd)
	}
	for _, p := range c.out.copiers {
		cs.Streams = append(cs.Streams, streamState{Name: p.name, FD: fdOf(p.r), Pending: p.pending})
	}
	if n := c.notify; n != nil {
		cs.Notify = &notifyCross{FD: fdOf(n.sock), Dir: n.dir, Values: n.snapshot().cross()}
	}
}

// fdOf is f's descriptor number. Unlike f.Fd it leaves f non-blocking,
// so that it stays in the netpoller here and is pollable after the exec.
func fdOf(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) }) //nolint:errcheck // only fails on a closed file, and then -1 says so
	}
	return fd
}

// partialHolder is a writer that keeps an unfinished line (logs.Stream):
// at a hand-over tend takes it, so that the next binary's writer for the
// same stream gets it first and the line is written whole, once.
type partialHolder interface {
	TakePartial() []byte
}

// detach stops the copiers at a read boundary: what they read is
// written, what they did not stays in the pipe.
func (o *childOutput) detach() {
	for _, p := range o.copiers {
		p.detaching.Store(true)
		p.r.SetReadDeadline(pastDeadline) //nolint:errcheck // a pipe supports deadlines
	}
	o.running.Wait()
	for _, p := range o.copiers {
		if h, ok := p.w.(partialHolder); ok {
			p.pending = h.TakePartial()
		}
	}
}

// reattach starts the copiers again; each first gives its writer back
// its unfinished line.
func (o *childOutput) reattach(tail *tailBuffer, log logr.Logger) {
	for _, p := range o.copiers {
		p.detaching.Store(false)
		p.r.SetReadDeadline(time.Time{}) //nolint:errcheck // as in detach
		p.flushed = make(chan struct{})
	}
	o.start(tail, log)
}

// detach stops the reader, leaving what is queued in the socket.
func (n *notifySocket) detach() {
	if n == nil {
		return
	}
	n.detaching.Store(true)
	n.sock.SetReadDeadline(pastDeadline) //nolint:errcheck // a socket supports deadlines
	<-n.drained
}

// reattach starts the reader again once it has taken what was sent
// while it was detached, so that the owner's timers (the watchdog's) see
// the keep-alives the agent sent meanwhile.
func (n *notifySocket) reattach() {
	if n == nil {
		return
	}
	n.detaching.Store(false)
	n.sock.SetReadDeadline(time.Time{}) //nolint:errcheck // as in detach
	n.drained = make(chan struct{})
	n.takeQueued()
	go n.read()
}

// takeQueued applies every message queued in the socket now.
func (n *notifySocket) takeQueued() {
	if rc, err := n.sock.SyscallConn(); err == nil {
		n.readQueued(rc, make([]byte, maxNotifyDatagram), make([]byte, notifyOOBSize))
	}
}

// errBlockingWait: a child waited for by a blocking waitid (no pidfd)
// cannot be detached.
var errBlockingWait = errors.New("the child is waited for without a pidfd (kernel before 5.3?), which cannot be interrupted")

// interruptWait makes waitExited return os.ErrDeadlineExceeded.
func (h procHandle) interruptWait() error {
	if h.pidfd == nil {
		return errBlockingWait
	}
	return h.pidfd.SetReadDeadline(pastDeadline)
}

func (h procHandle) resumeWait() {
	if h.pidfd != nil {
		h.pidfd.SetReadDeadline(time.Time{}) //nolint:errcheck // as in interruptWait
	}
}

// resumeChild takes over a child a previous binary detached (verified
// by verifyChild): its output goes to s's writers, the unfinished lines
// first, and every goroutine of the child runs again.
func resumeChild(s *settings, af *agentFiles, cs *childState, cg *cgroup.Agent, leaf *cgroup.Leaf) *child {
	c := &child{pid: cs.PID, leaderStart: cs.LeaderStart, started: cs.Started, leaf: leaf, cg: cg, oomBefore: cs.OOMBefore,
		following: cs.LeaderReaped, done: make(chan Exit, 1), tail: newTailBuffer(s.tailBytes), detached: make(chan struct{})}
	c.h = procHandle{pid: cs.PID}
	if !cs.LeaderReaped {
		c.h.pidfd = os.NewFile(uintptr(cs.PidFD), "pidfd")
	}
	if cs.MainPID != 0 {
		c.main = &successor{pid: cs.MainPID, pidfd: os.NewFile(uintptr(cs.MainPidFD), "pidfd")}
	}
	c.tail.Write(cs.Tail) //nolint:errcheck // never fails
	for _, st := range cs.Streams {
		w := s.stdout
		if st.Name == "stderr" {
			w = s.stderr
		}
		c.out.add(os.NewFile(uintptr(st.FD), st.Name+" pipe"), w, st.Name)
		c.out.copiers[len(c.out.copiers)-1].pending = st.Pending
	}
	if nc := cs.Notify; nc != nil {
		var store *fdStore
		if s.fdStoreMax > 0 {
			store = &af.store
		}
		n := &notifySocket{notifyState: newNotifyState(), dir: nc.Dir, store: store,
			sock: os.NewFile(uintptr(nc.FD), "notify socket"), drained: make(chan struct{})}
		n.notifySnapshot = nc.Values.snapshot()
		if n.readySeq > 0 {
			n.readyOnce.Do(func() { close(n.ready) })
		}
		if n.seq > cs.Said.Seq {
			n.news <- struct{}{} // the owner has not acted on all of it yet
		}
		n.leader, n.member, n.adopt = c.pid, c.isMember, c.adopt
		c.notify = n
		n.takeQueued() // what the agent said during the hand-over comes first
		go n.read()
	}
	c.out.start(c.tail, s.log)
	go c.wait(s)
	return c
}

// verifyChild checks that the child a hand-over state describes is this
// process's own, and the very process described, before it is trusted.
func verifyChild(cs *childState) error {
	if cs.Exit != nil {
		return nil
	}
	for _, fd := range cs.fds() {
		if !inherited(fd) {
			return fmt.Errorf("descriptor %d did not cross the exec", fd)
		}
	}
	if cs.MainPID != 0 && pidOfPidfd(cs.MainPidFD) != cs.MainPID {
		return fmt.Errorf("main process %d (MAINPID=): its pidfd names another process", cs.MainPID)
	}
	if cs.LeaderReaped {
		return nil
	}
	if got := pidOfPidfd(cs.PidFD); got != cs.PID {
		return fmt.Errorf("pidfd %d names PID %d, not %d", cs.PidFD, got, cs.PID)
	}
	st, err := procfs.ReadStat(cs.PID)
	switch {
	case err != nil:
		return fmt.Errorf("PID %d: %w", cs.PID, err)
	case st.PPID != os.Getpid():
		return fmt.Errorf("PID %d is not this process's child (its parent is %d)", cs.PID, st.PPID)
	case st.StartTicks != cs.LeaderStart:
		return fmt.Errorf("PID %d started at tick %d, not %d: another process", cs.PID, st.StartTicks, cs.LeaderStart)
	}
	if !st.Live() || cs.Exe == "" {
		return nil // a zombie has no executable left to compare
	}
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(cs.PID) + "/exe"); exe != cs.Exe {
		return fmt.Errorf("PID %d runs %q, not %q", cs.PID, exe, cs.Exe)
	}
	return nil
}

// killUnverified ends what can safely be ended of a child that failed
// verifyChild: the child with its group, if it is provably this
// process's unreaped child (then reaped), and its MAINPID= successor
// through its pidfd. A PID that is not provably the child is never
// signalled; its cgroup leaf, if any, is killed by the caller.
func killUnverified(cs *childState) {
	if cs.Exit != nil {
		return
	}
	if cs.MainPID != 0 && inherited(cs.MainPidFD) && pidOfPidfd(cs.MainPidFD) == cs.MainPID {
		unix.PidfdSendSignal(cs.MainPidFD, unix.SIGKILL, nil, 0) //nolint:errcheck // ESRCH: gone
	}
	if cs.LeaderReaped {
		return
	}
	// The child, if it still is: what its pidfd names, or this process's
	// unreaped child with the recorded start time (its PID cannot have
	// been reused while it is unreaped).
	st, err := procfs.ReadStat(cs.PID)
	byPidfd := inherited(cs.PidFD) && pidOfPidfd(cs.PidFD) == cs.PID
	if err != nil || st.PPID != os.Getpid() || !byPidfd && st.StartTicks != cs.LeaderStart {
		return
	}
	syscall.Kill(-cs.PID, syscall.SIGKILL) //nolint:errcheck // the leader is unreaped: the group ID is its
	syscall.Kill(cs.PID, syscall.SIGKILL)  //nolint:errcheck // as above
	var ws syscall.WaitStatus
	syscall.Wait4(cs.PID, &ws, 0, nil) //nolint:errcheck // ECHILD: not ours after all
}

// pidOfPidfd is the PID a pidfd refers to: from the kernel's pidfd info
// (Linux 6.13+: one ioctl, a thousand agents are verified in a few
// milliseconds), else from /proc/self/fdinfo; 0 if fd is no pidfd, -1 if
// its process is reaped.
func pidOfPidfd(fd int) int {
	var info pidfdInfo
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), pidfdGetInfo, uintptr(unsafe.Pointer(&info)))
	switch errno {
	case 0:
		return int(info.pid)
	case unix.ESRCH:
		return -1
	}
	data, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return 0
			}
			return pid
		}
	}
	return 0
}

// ownChildren lists this process's children, from /proc.
func ownChildren() []int {
	self := os.Getpid()
	pids, _ := procfs.Find(func(_ int, st procfs.Stat) bool { return st.PPID == self })
	return pids
}

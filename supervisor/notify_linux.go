package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// notifySocket is a child's private sd_notify endpoint: a datagram socket
// in a directory of its own, passed to the child as NOTIFY_SOCKET. One
// reader takes its messages for the child's whole life, as they arrive, so
// the child can never block in sd_notify on a full queue; it checks each
// sender (SO_PASSCRED) and records what the message says in the child's
// notifyState.
type notifySocket struct {
	*notifyState
	dir  string
	sock *os.File // non-blocking datagram socket, read in the netpoller
	// leader is the child's PID and member reports whether a PID is a
	// live process of its boundary (cgroup leaf or process group); both
	// set once the child is spawned, before read starts.
	leader int
	member func(pid int) bool
	store  *fdStore // the agent's fd store; nil when it has none
	// adopt makes a MAINPID= process the child's main one; called by the
	// reader before the message's descriptors are closed, so a sender
	// waiting on its barrier (systemd-notify) cannot let the old main
	// process exit first. Set before read starts.
	adopt func(pid int) error
	// drained is closed when the reader has ended: after flush asked it
	// to read everything queued, or a hand-over to stop (detaching).
	drained   chan struct{}
	detaching atomic.Bool
}

// maxNotifyDatagram is the largest message read, as systemd's limit.
const maxNotifyDatagram = 4096

// maxPassedFDs is how many descriptors one message may carry (the kernel's
// SCM_MAX_FD); more are dropped by the kernel.
const maxPassedFDs = 253

// notifyOOBSize holds a message's credentials and its descriptors.
var notifyOOBSize = unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(4*maxPassedFDs)

// maxSocketPath is what sun_path holds, its terminating NUL aside.
const maxSocketPath = 107

// notifyDrainLimit bounds the messages flush reads after the exit: an
// escaped descendant could otherwise keep it reading.
const notifyDrainLimit = 1024

// socketBase is where the socket directories go: the temporary directory,
// unless its path is too long for a socket path beneath it (a long TMPDIR),
// then /tmp.
func socketBase() string {
	const longestBelow = len("/tend-notify-") + 10 + len("/notify.sock") // MkdirTemp adds up to 10 digits
	if base := os.TempDir(); len(base)+longestBelow <= maxSocketPath {
		return base
	}
	return "/tmp"
}

// newNotifySocket makes the socket with plain system calls rather than
// package net, which would add its resolver and more to every host's
// binary for one datagram socket. With owner (the agent runs as another
// user) the directory and the socket are given to that user: the agent
// must reach them, and the 0700 directory keeps everyone else out.
func newNotifySocket(owner *syscall.Credential, store *fdStore) (*notifySocket, error) {
	dir, err := os.MkdirTemp(socketBase(), "tend-notify-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "notify.sock")
	if len(path) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("socket path %s is %d bytes, over the %d a Unix socket path holds", path, len(path), maxSocketPath)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &notifySocket{notifyState: newNotifyState(), dir: dir, store: store,
		sock: os.NewFile(uintptr(fd), "notify socket"), drained: make(chan struct{})}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err == nil && owner != nil {
		err = errors.Join(os.Chown(dir, int(owner.Uid), int(owner.Gid)), os.Chown(path, int(owner.Uid), int(owner.Gid)))
		if err != nil {
			err = fmt.Errorf("give %s to uid %d: %w", path, owner.Uid, err)
		}
	}
	if err != nil {
		n.sock.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

// env is the child's NOTIFY_SOCKET variable, and WATCHDOG_USEC when the
// watchdog is on.
func (n *notifySocket) env(watchdog time.Duration) []string {
	env := []string{"NOTIFY_SOCKET=" + filepath.Join(n.dir, "notify.sock")}
	if watchdog > 0 {
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(watchdog.Microseconds(), 10))
	}
	return env
}

// received is one datagram with what its control messages carried.
type received struct {
	msg []byte
	pid int   // the sender's PID (SCM_CREDENTIALS), 0 if missing
	fds []int // passed descriptors (SCM_RIGHTS)
}

// closeFDs closes what the message carried that nobody kept.
func (r *received) closeFDs() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}

// read takes the child's messages as they arrive until flush asks it to
// drain and stop, or the socket is closed.
func (n *notifySocket) read() {
	buf := make([]byte, maxNotifyDatagram)
	oob := make([]byte, notifyOOBSize)
	rc, err := n.sock.SyscallConn()
	if err != nil {
		close(n.drained)
		return
	}
	for {
		var r received
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			r, rerr = receiveNotify(int(fd), buf, oob)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && n.detaching.Load():
			close(n.drained) // what is queued is the next binary's
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			n.drain(rc, buf, oob)
			return
		case err != nil:
			close(n.drained)
			return // closed
		case rerr == nil:
			n.take(r)
		}
	}
}

// drain reads what is queued without waiting, then reports it is done.
func (n *notifySocket) drain(rc syscall.RawConn, buf, oob []byte) {
	defer close(n.drained)
	n.readQueued(rc, buf, oob)
}

// readQueued takes what is queued without waiting, up to
// notifyDrainLimit messages.
func (n *notifySocket) readQueued(rc syscall.RawConn, buf, oob []byte) {
	for range notifyDrainLimit {
		var r received
		var rerr error
		if err := rc.Control(func(fd uintptr) { r, rerr = receiveNotify(int(fd), buf, oob) }); err != nil {
			return
		}
		switch {
		case errors.Is(rerr, unix.EINTR):
		case rerr != nil:
			return // EAGAIN: nothing left
		default:
			n.take(r)
		}
	}
}

// flush makes the reader take every message already queued and end; the
// waiter calls it once the child's group is gone, before the Exit goes
// out, so that a READY=1 or EXIT_STATUS= sent just before the end counts.
func (n *notifySocket) flush() {
	if n == nil {
		return
	}
	n.sock.SetReadDeadline(time.Unix(1, 0)) //nolint:errcheck // not pollable: read ends at close instead
	select {
	case <-n.drained:
	case <-time.After(time.Second): // only if the socket is not in the netpoller
	}
}

func receiveNotify(fd int, buf, oob []byte) (received, error) {
	var r received
	k, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return r, err
	}
	r.msg = buf[:k]
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return r, nil // no credentials: the sender check refuses it
	}
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Header.Level != unix.SOL_SOCKET:
		case m.Header.Type == unix.SCM_CREDENTIALS:
			if cred, err := unix.ParseUnixCredentials(m); err == nil {
				r.pid = int(cred.Pid)
			}
		case m.Header.Type == unix.SCM_RIGHTS:
			fds, _ := unix.ParseUnixRights(m)
			r.fds = append(r.fds, fds...)
		}
	}
	return r, nil
}

// take applies one message from an accepted sender and closes whatever
// descriptors it carried that the fd store does not keep: a BARRIER=1
// sender waits for exactly that.
func (n *notifySocket) take(r received) {
	defer r.closeFDs()
	if !n.fromChild(r.pid) {
		return
	}
	m := parseNotify(r.msg)
	if m.mainPID != 0 && (!n.member(m.mainPID) || n.adopt == nil || n.adopt(m.mainPID) != nil) {
		m.mainPID = 0 // MAINPID= may only name a live process of the child's boundary
	}
	switch {
	case m.fdStoreRemove && m.fdName != "":
		n.store.remove(m.fdName)
	case m.fdStore && len(r.fds) > 0:
		r.fds = n.store.add(m.fdName, r.fds)
	}
	n.apply(m, time.Now())
}

// fromChild reports whether a sender counts as the child: its main
// process, or a live process of its boundary (its cgroup leaf, which
// setsid'd descendants cannot leave, or its process group). For the
// latter a pidfd taken
// before /proc is read and still alive after it proves that /proc showed
// one process, not a PID recycled in between. (SO_PASSPIDFD would hand
// the sender's pidfd with every message, but it doubled the latency of
// READY=1 and the cost of a start and stop: see DESIGN.md.)
func (n *notifySocket) fromChild(pid int) bool {
	if pid == 0 {
		return false
	}
	if pid == n.leader {
		return true // the main process: its PID stays reserved until it is reaped
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err == unix.ENOSYS && n.member(pid) // no pidfd on this kernel: /proc alone
	}
	defer unix.Close(pidfd)
	return n.member(pid) && unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil
}

func (n *notifySocket) close() {
	if n != nil {
		n.sock.Close()
		os.RemoveAll(n.dir)
	}
}

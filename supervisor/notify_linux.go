package supervisor

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
	"golang.org/x/sys/unix"
)

// notifySocket is a child's private sd_notify socket: a datagram socket in
// a 0700 directory of its own, passed to the child as NOTIFY_SOCKET, with
// SO_PASSCRED so that only messages from the child's process group count.
// One reader takes its messages for the child's whole life, as they
// arrive, so the child can never block in sd_notify on a full queue.
type notifySocket struct {
	dir  string
	sock *os.File // non-blocking datagram socket, read in the netpoller
	pgid int      // set once the child is spawned, before read starts

	ready     chan struct{} // closed at the child's first READY=1
	readyOnce sync.Once
	// lastKeepalive is when the child last sent WATCHDOG=1 (Unix ns).
	lastKeepalive atomic.Int64
	status        atomic.Pointer[string] // the latest STATUS= text
	triggered     atomic.Bool            // WATCHDOG=trigger came
	extendTo      atomic.Int64           // Unix ns the latest EXTEND_TIMEOUT_USEC= asks the timeout to reach
	news          chan struct{}          // holds a token when status or triggered changed
}

// maxNotifyDatagram is the largest message read, as systemd's limit.
const maxNotifyDatagram = 4096

// maxSocketPath is what sun_path holds, its terminating NUL aside.
const maxSocketPath = 107

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
func newNotifySocket(owner *syscall.Credential) (*notifySocket, error) {
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
	n := &notifySocket{dir: dir, sock: os.NewFile(uintptr(fd), "notify socket"),
		ready: make(chan struct{}), news: make(chan struct{}, 1)}
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
		n.close()
		return nil, err
	}
	return n, nil
}

// receive reads one datagram and its control message, parked in the
// netpoller until one arrives, the read deadline passes or the socket is
// closed.
func (n *notifySocket) receive(buf, oob []byte) (msg, control []byte, err error) {
	rc, err := n.sock.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	var k, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		k, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err = errors.Join(err, rerr); err != nil {
		return nil, nil, err
	}
	return buf[:k], oob[:oobn], nil
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

// read takes the child's messages as they arrive until the socket is
// closed after the child's exit. Messages from outside the child's group
// are ignored, as are keys it does not know.
func (n *notifySocket) read() {
	buf := make([]byte, maxNotifyDatagram)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		msg, control, err := n.receive(buf, oob)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return // closed with the child
		}
		if n.fromChild(control) {
			n.handle(msg)
		}
	}
}

// handle takes one message from the child: READY=1 closes ready,
// WATCHDOG=1 records a keep-alive, and STATUS=, WATCHDOG=trigger and
// EXTEND_TIMEOUT_USEC= are left for the owner, told through news. The reader never waits for the
// owner: news holds one token, and the owner reads the latest values.
func (n *notifySocket) handle(msg []byte) {
	for _, line := range strings.Split(string(msg), "\n") {
		key, value, _ := strings.Cut(line, "=")
		switch {
		case line == "READY=1":
			n.readyOnce.Do(func() { close(n.ready) })
		case line == "WATCHDOG=1":
			n.lastKeepalive.Store(time.Now().UnixNano())
		case line == "WATCHDOG=trigger":
			n.triggered.Store(true)
			n.tell()
		case key == "STATUS":
			n.status.Store(&value)
			n.tell()
		case key == "EXTEND_TIMEOUT_USEC":
			if usec, err := strconv.ParseUint(value, 10, 63); err == nil {
				n.extendTo.Store(time.Now().Add(time.Duration(min(usec, uint64(math.MaxInt64/1000))) * time.Microsecond).UnixNano())
				n.tell()
			}
		}
	}
}

func (n *notifySocket) tell() {
	select {
	case n.news <- struct{}{}:
	default: // a token is already there
	}
}

// fromChild reports whether the sender's credentials name a process in the
// child's group.
func (n *notifySocket) fromChild(oob []byte) bool {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		cred, err := syscall.ParseUnixCredentials(&m)
		if err != nil {
			continue
		}
		pid := int(cred.Pid)
		if pid == n.pgid {
			return true
		}
		if st, err := procfs.ReadStat(pid); err == nil && st.PGRP == n.pgid {
			return true
		}
	}
	return false
}

func (n *notifySocket) close() {
	if n != nil {
		n.sock.Close()
		os.RemoveAll(n.dir)
	}
}

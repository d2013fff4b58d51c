package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
	"golang.org/x/sys/unix"
)

// notifySocket is a child's private sd_notify socket: a datagram socket in
// a 0700 directory of its own, passed to the child as NOTIFY_SOCKET, with
// SO_PASSCRED so that only messages from the child's process group count.
type notifySocket struct {
	dir  string
	sock *os.File // non-blocking datagram socket, read in the netpoller
	pgid int      // set once the child is spawned
	// lastKeepalive is when the child last sent WATCHDOG=1 (Unix ns).
	lastKeepalive atomic.Int64
}

// maxNotifyDatagram is the largest message read, as systemd's limit.
const maxNotifyDatagram = 4096

// newNotifySocket makes the socket with plain system calls rather than
// package net, which would add its resolver and more to every host's
// binary for one datagram socket.
func newNotifySocket() (*notifySocket, error) {
	dir, err := os.MkdirTemp("", "tend-notify-")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &notifySocket{dir: dir, sock: os.NewFile(uintptr(fd), "notify socket")}
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "notify.sock")})
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
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

// waitReady reads messages until one from the child's process group says
// READY=1, or ctx ends. It serves as the child's readiness probe.
func (n *notifySocket) waitReady(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(readyProbeTimeout)
	}
	n.sock.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { n.sock.SetReadDeadline(time.Unix(1, 0)) }) // cancel: read no more
	defer stop()
	buf := make([]byte, maxNotifyDatagram)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		msg, control, err := n.receive(buf, oob)
		if err != nil {
			return fmt.Errorf("no READY=1 yet: %w", err)
		}
		if !n.fromChild(control) {
			continue // someone else's message: ignored
		}
		if n.handle(msg) {
			return nil
		}
	}
}

// handle takes one message from the child: it records a WATCHDOG=1 and
// reports whether the message said READY=1. Other keys are ignored.
func (n *notifySocket) handle(msg []byte) (ready bool) {
	for _, line := range strings.Split(string(msg), "\n") {
		switch line {
		case "READY=1":
			ready = true
		case "WATCHDOG=1":
			n.lastKeepalive.Store(time.Now().UnixNano())
		}
	}
	return ready
}

// serve takes the child's messages after it is ready, for the watchdog,
// until the socket is closed when the child exits.
func (n *notifySocket) serve() {
	n.sock.SetReadDeadline(time.Time{})
	buf := make([]byte, maxNotifyDatagram)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		msg, control, err := n.receive(buf, oob)
		if errors.Is(err, os.ErrDeadlineExceeded) { // a readiness deadline set late
			n.sock.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return
		}
		if n.fromChild(control) {
			n.handle(msg)
		}
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

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
)

// notifySocket is a child's private sd_notify socket: a datagram socket in
// a 0700 directory of its own, passed to the child as NOTIFY_SOCKET, with
// SO_PASSCRED so that only messages from the child's process group count.
type notifySocket struct {
	dir  string
	conn *net.UnixConn
	pgid int // set once the child is spawned
	// lastKeepalive is when the child last sent WATCHDOG=1 (Unix ns).
	lastKeepalive atomic.Int64
}

// maxNotifyDatagram is the largest message read, as systemd's limit.
const maxNotifyDatagram = 4096

func newNotifySocket() (*notifySocket, error) {
	dir, err := os.MkdirTemp("", "tend-notify-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &notifySocket{dir: dir, conn: conn}
	raw, err := conn.SyscallConn()
	if err == nil {
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
		})
		err = errors.Join(err, serr)
	}
	if err != nil {
		n.close()
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

// waitReady reads messages until one from the child's process group says
// READY=1, or ctx ends. It serves as the child's readiness probe.
func (n *notifySocket) waitReady(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(readyProbeTimeout)
	}
	n.conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { n.conn.SetReadDeadline(time.Unix(1, 0)) }) // cancel: read no more
	defer stop()
	buf := make([]byte, maxNotifyDatagram)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		k, oobn, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return fmt.Errorf("no READY=1 yet: %w", err)
		}
		if !n.fromChild(oob[:oobn]) {
			continue // someone else's message: ignored
		}
		if n.handle(buf[:k]) {
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
	n.conn.SetReadDeadline(time.Time{})
	buf := make([]byte, maxNotifyDatagram)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	for {
		k, oobn, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if errors.Is(err, os.ErrDeadlineExceeded) { // a readiness deadline set late
			n.conn.SetReadDeadline(time.Time{})
			continue
		}
		if err != nil {
			return
		}
		if n.fromChild(oob[:oobn]) {
			n.handle(buf[:k])
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
		n.conn.Close()
		os.RemoveAll(n.dir)
	}
}

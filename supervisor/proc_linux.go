package supervisor

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/internal/cgroup"
	"github.com/tend-dev/tend/internal/procfs"
	"golang.org/x/sys/unix"
)

// procHandle is tend's only handle on a spawned leader: its PID and the
// pidfd the kernel returned from clone (nil where pidfd is unavailable).
// tend forks through syscall.StartProcess rather than os.StartProcess
// because an os.Process holds a pidfd of its own, which would double the
// descriptors each agent costs the host.
type procHandle struct {
	pid   int
	pidfd *os.File // non-blocking, parked in the netpoller while waiting
}

// startProcess forks and execs path in a new process group, with the
// credentials and parent-death signal of s's contract; given a leaf, the
// child is cloned straight into it (clone3 CLONE_INTO_CGROUP) and into
// the agent's v1 cgroups, so not even a fork right after exec escapes.
func startProcess(s *settings, path string, argv, env []string, files []uintptr, cg *cgroup.Agent, leaf *cgroup.Leaf) (procHandle, error) {
	pidfd := -1
	sys := &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: s.contract.cred,
		Pdeathsig:  s.contract.parentDeathSignal,
	}
	if !s.blockingWait {
		sys.PidFD = &pidfd
	}
	if leaf != nil {
		sys.UseCgroupFD, sys.CgroupFD = true, leaf.FD()
	}
	var pid int
	fork := func() (err error) {
		pid, _, err = syscall.StartProcess(path, argv, &syscall.ProcAttr{
			Dir: s.contract.dir, Env: env, Files: files, Sys: sys,
		})
		return err
	}
	var err error
	if cg != nil {
		err = cg.Spawn(fork)
	} else {
		err = fork()
	}
	if err != nil {
		return procHandle{}, fmt.Errorf("fork/exec %s: %w", path, err)
	}
	h := procHandle{pid: pid}
	if pidfd >= 0 {
		if err := unix.SetNonblock(pidfd, true); err != nil {
			syscall.Close(pidfd)
			s.noteWaitFallback(err)
			return h, nil
		}
		h.pidfd = os.NewFile(uintptr(pidfd), "pidfd")
	} else if !s.blockingWait {
		s.noteWaitFallback(errors.New("clone returned no pidfd"))
	}
	return h, nil
}

// waitExited blocks until the leader has exited, leaving it a zombie so its
// PID, and with it the process group ID, stays reserved. With a pidfd the
// goroutine parks in Go's netpoller, so a thousand idle agents hold no OS
// thread each; without one (kernel before 5.3, seccomp) it blocks in
// waitid(WNOWAIT), holding one OS thread per child.
func (h procHandle) waitExited() error {
	if h.pidfd == nil {
		return waitidNoReap(unix.P_PID, h.pid)
	}
	rc, err := h.pidfd.SyscallConn()
	if err != nil {
		return waitidNoReap(unix.P_PID, h.pid)
	}
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		return werr != nil || info.Signo != 0 // Signo is SIGCHLD once it has exited
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded): // a hand-over interrupts the wait
		return err
	case err != nil: // the pidfd is not pollable here
		return waitidNoReap(unix.P_PID, h.pid)
	}
	return werr
}

func waitidNoReap(idType, id int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(idType, id, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// signal sends sig to the leader alone. The caller guarantees the leader
// is not reaped yet.
func (h procHandle) signal(sig syscall.Signal) error {
	if h.pidfd == nil {
		return syscall.Kill(h.pid, sig)
	}
	return pidfdSignal(h.pidfd, sig)
}

// pidfdSignal sends sig to the process pidfd refers to, which cannot be a
// later process given the same PID.
func pidfdSignal(pidfd *os.File, sig syscall.Signal) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); err != nil {
		return err
	}
	return serr
}

// release frees the pidfd once the leader is reaped.
func (h procHandle) release() {
	if h.pidfd != nil {
		h.pidfd.Close()
	}
}

// How often waitGroupGone looks again at most, and when it reports a stuck group.
const (
	groupPollMax = 100 * time.Millisecond
	stuckAfter   = 5 * time.Second
)

// waitGroupGone kills, and waits for the end of, every process left in
// group pgid after its leader was reaped. SIGKILL is asynchronous, and an
// orphan reparented to init stays a zombie until init reaps it (kill(2)
// still finds zombies), so the group counts as gone when kill says ESRCH or
// /proc shows only zombies in it. When /proc cannot be read (the host is out
// of file descriptors) it goes on polling kill(2) until either answers. A
// member stuck in uninterruptible sleep is reported once after stuckAfter
// and waited for: the next child must not start beside it.
func waitGroupGone(pgid int, log logr.Logger) {
	delay := time.Millisecond
	start := time.Now()
	warned := false
	for {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		live, err := liveGroupMembers(pgid)
		if err == nil && len(live) == 0 {
			return
		}
		if !warned && time.Since(start) > stuckAfter {
			log.Error(errors.Join(errors.New("process group members survive SIGKILL"), err),
				"agent's processes are stuck (uninterruptible sleep?); waiting for them before the next start",
				"pgid", pgid, "pids", live)
			warned = true
		}
		time.Sleep(delay)
		delay = min(delay*2, groupPollMax)
	}
}

// startTicks is when pid started, in clock ticks after boot; 0 if unknown.
func startTicks(pid int) uint64 {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0
	}
	return st.StartTicks
}

// isMember reports whether pid is a live process of the child's
// boundary: its cgroup leaf, or its process group.
func (c *child) isMember(pid int) bool {
	if c.leaf != nil {
		st, err := procfs.ReadStat(pid)
		return err == nil && st.Live() && c.leaf.Contains(pid)
	}
	return isLiveMember(pid, c.pid)
}

// isLiveMember reports whether pid is a live (not zombie) process of
// group pgid, read from /proc/PID/stat.
func isLiveMember(pid, pgid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && st.PGRP == pgid && st.Live()
}

// liveGroupMembers lists the processes in group pgid that are not zombies,
// read from /proc/PID/stat.
func liveGroupMembers(pgid int) ([]int, error) {
	return procfs.Find(func(_ int, st procfs.Stat) bool { return st.PGRP == pgid && st.Live() })
}

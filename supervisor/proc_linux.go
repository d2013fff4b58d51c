package supervisor

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
	"golang.org/x/sys/unix"
)

func sysProcAttr(s *settings) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: s.cred,
		Pdeathsig:  s.parentDeathSignal,
	}
}

// waitExitNoReap blocks until process pid (our unreaped child) has exited,
// leaving it a zombie so its PID, and with it the process group ID, stays
// reserved. It parks the goroutine on a pidfd in Go's netpoller, so a
// thousand idle agents hold no OS thread each; without pidfd (kernel before
// 5.3, seccomp), or when blocking is set, it falls back to a blocking
// waitid(WNOWAIT), which holds one OS thread per child, and tells
// fallback why.
func waitExitNoReap(pid int, blocking bool, fallback func(reason error)) error {
	if blocking {
		return waitidNoReap(pid)
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		fallback(err)
		return waitidNoReap(pid)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		fallback(err)
		return waitidNoReap(pid)
	}
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		return werr != nil || info.Signo != 0 // Signo is SIGCHLD once it has exited
	})
	if err != nil { // the pidfd is not pollable here
		fallback(err)
		return waitidNoReap(pid)
	}
	return werr
}

func waitidNoReap(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
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
// /proc shows only zombies in it. A member stuck in uninterruptible sleep is
// reported once after stuckAfter and waited for: the next child must not
// start beside it.
func waitGroupGone(pgid int, s *settings) {
	delay := time.Millisecond
	start := time.Now()
	warned := false
	for {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		live := liveGroupMembers(pgid)
		if len(live) == 0 {
			return
		}
		if !warned && time.Since(start) > stuckAfter {
			s.log.Error(errors.New("process group members survive SIGKILL"),
				"agent's processes are stuck (uninterruptible sleep?); waiting for them before the next start",
				"pgid", pgid, "pids", live)
			warned = true
		}
		time.Sleep(delay)
		delay = min(delay*2, groupPollMax)
	}
}

// liveGroupMembers lists the processes in group pgid that are not zombies,
// read from /proc/PID/stat.
func liveGroupMembers(pgid int) []int {
	pids, err := procfs.PIDs()
	if err != nil {
		return nil
	}
	var live []int
	for _, pid := range pids {
		if st, err := procfs.ReadStat(pid); err == nil && st.PGRP == pgid && st.Live() {
			live = append(live, pid)
		}
	}
	return live
}

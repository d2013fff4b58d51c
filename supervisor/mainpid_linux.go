package supervisor

import (
	"errors"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// successor is a process the child named its main process with MAINPID=:
// not tend's child, so it is held by a pidfd of its own, its end is seen
// when that pidfd becomes readable, and its exit status comes from the
// kernel's pidfd info (Linux 6.15+) once whoever adopted it has reaped it.
type successor struct {
	pid   int
	pidfd *os.File
}

// openSuccessor takes hold of pid if member says it is a live process of
// the child's boundary. The pidfd is opened first, so the check cannot be
// about a later process given the same PID.
func openSuccessor(pid int, member func(int) bool) (*successor, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	s := &successor{pid: pid, pidfd: os.NewFile(uintptr(fd), "pidfd")}
	if !member(pid) || s.signal(0) != nil {
		s.close()
		return nil, errors.New("not a live process of the agent's cgroup or process group")
	}
	return s, nil
}

func (s *successor) signal(sig syscall.Signal) error { return pidfdSignal(s.pidfd, sig) }

// waitExited parks in the netpoller until the successor has exited.
func (s *successor) waitExited() {
	rc, err := s.pidfd.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool { //nolint:errcheck // a pidfd is pollable; a failure ends the wait like an exit
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err != nil || n > 0
	})
}

// pidfdInfo is the kernel's struct pidfd_info up to exit_code
// (PIDFD_INFO_SIZE_VER0, 64 bytes).
type pidfdInfo struct {
	mask, cgroupid                                                    uint64
	pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid uint32
	exitCode                                                          int32
}

const (
	pidfdGetInfo  = 0xC040FF0B // _IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)
	pidfdInfoExit = 1 << 3     // PIDFD_INFO_EXIT
)

// successorReapWait is how long exitStatus waits for the successor's new
// parent (init or a subreaper) to reap it: only then is its status known.
const successorReapWait = time.Second

// exitStatus is the successor's wait status, once it has exited and been
// reaped, where the kernel keeps it for pidfds (Linux 6.15+).
func (s *successor) exitStatus() (syscall.WaitStatus, bool) {
	deadline := time.Now().Add(successorReapWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		info := pidfdInfo{mask: pidfdInfoExit}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, s.pidfd.Fd(), pidfdGetInfo, uintptr(unsafe.Pointer(&info)))
		switch {
		case errno == 0 && info.mask&pidfdInfoExit != 0:
			return syscall.WaitStatus(info.exitCode), true
		case errno != 0 && errno != unix.ESRCH, time.Now().After(deadline):
			return 0, false // a kernel without exit info, or nobody reaps it
		}
		time.Sleep(delay)
	}
}

func (s *successor) close() { s.pidfd.Close() }

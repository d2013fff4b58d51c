package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// Leaf is the v2 cgroup of one child and its whole tree.
type Leaf struct {
	dir    string
	parent *Parent
	agent  *Agent      // whose current leaf it is, until removed; nil when swept
	fd     *os.File    // for clone3's CLONE_INTO_CGROUP; closed after the spawn
	killed atomic.Bool // written to cgroup.kill: never to be cloned into again
}

// Path is the leaf's directory.
func (l *Leaf) Path() string { return l.dir }

// FD is the descriptor of the leaf's directory, to clone the child into.
func (l *Leaf) FD() int { return int(l.fd.Fd()) }

// Spawned closes the descriptor once the child is in the leaf; nil is
// no leaf.
func (l *Leaf) Spawned() {
	if l != nil && l.fd != nil {
		l.fd.Close()
		l.fd = nil
	}
}

// Procs lists the processes in the leaf (zombies are not listed).
func (l *Leaf) Procs() ([]int, error) { return cgroups.GetPids(l.dir) }

// Contains reports whether pid is in the leaf, from /proc/PID/cgroup.
func (l *Leaf) Contains(pid int) bool {
	own, err := cgroups.ParseCgroupFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	return filepath.Join(l.parent.h.unified, own[""]) == l.dir
}

// Kill SIGKILLs every process in the leaf at once (cgroup.kill, Linux
// 5.14); on older kernels each process listed, until none is.
func (l *Leaf) Kill() error {
	l.killed.Store(true)
	err := cgroups.WriteFile(l.dir, "cgroup.kill", "1")
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for range 100 {
		pids, err := l.Procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // ESRCH: already gone
		}
	}
	return fmt.Errorf("cgroup %s: processes keep appearing", l.dir)
}

// Populated reports whether any live process is in the leaf, from
// cgroup.events.
func (l *Leaf) Populated() (bool, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, []byte("populated 1")), nil
}

// stuckAfter is when WaitEmpty reports processes that outlive SIGKILL.
const stuckAfter = 5 * time.Second

// WaitEmpty returns once no live process is left in the leaf. The kernel
// notifies a change of cgroup.events, but at most once per 10 ms per file,
// and the last process's exit lands tens of microseconds after its
// reap: so the file is read again at short, doubling intervals (50 µs up
// to 1 s), and the notification ends any wait at once. stuck, if set, is
// called once if this takes longer than stuckAfter (a process in
// uninterruptible sleep); the wait goes on, as the next child must not
// run beside it.
func (l *Leaf) WaitEmpty(stuck func(pids []int)) {
	if full, err := l.Populated(); err != nil || !full {
		return
	}
	changed, stop := l.parent.watch.add(filepath.Join(l.dir, "cgroup.events"))
	defer stop()
	deadline := time.Now().Add(stuckAfter)
	delay := 50 * time.Microsecond
	recheck := time.NewTimer(delay)
	defer recheck.Stop()
	for {
		select {
		case <-changed:
		case <-recheck.C:
			delay = min(2*delay, time.Second)
			recheck.Reset(delay)
		}
		if full, err := l.Populated(); err != nil || !full {
			return
		}
		if stuck != nil && time.Now().After(deadline) {
			pids, _ := l.Procs()
			stuck(pids)
			stuck = nil
		}
	}
}

// Release hands the leaf, once empty, back to its agent for the next
// child, or removes it if it was killed (see Agent.NewLeaf).
func (l *Leaf) Release() error {
	a := l.agent
	if l.killed.Load() || a == nil {
		return l.Remove()
	}
	l.Spawned()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == l {
		a.current = nil
	}
	a.spare = l
	return nil
}

// Remove deletes the leaf once it is empty.
func (l *Leaf) Remove() error {
	defer l.parent.holdSlot()()
	l.Spawned()
	if err := unix.Rmdir(l.dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove cgroup %s: %w", l.dir, err)
	}
	if a := l.agent; a != nil {
		a.mu.Lock()
		if a.current == l {
			a.current = nil
		}
		a.mu.Unlock()
	}
	return nil
}

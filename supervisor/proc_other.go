//go:build !linux

package supervisor

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/internal/cgroup"
)

// Outside Linux there is no pidfd, no PR_SET_PDEATHSIG and no /proc stat
// to read: the child is reaped by a blocking wait4 and the rest of its
// group is killed until kill(2) no longer finds it.

type procHandle struct{ pid int }

// startProcess ignores cg and leaf: there are no cgroups here.
func startProcess(s *settings, path string, argv, env []string, files []uintptr, _ *cgroup.Agent, _ *cgroup.Leaf) (procHandle, error) {
	pid, _, err := syscall.StartProcess(path, argv, &syscall.ProcAttr{
		Dir: s.contract.dir, Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Setpgid: true, Credential: s.contract.cred},
	})
	if err != nil {
		return procHandle{}, fmt.Errorf("fork/exec %s: %w", path, err)
	}
	return procHandle{pid: pid}, nil
}

var errNoNonReapingWait = errors.New("waiting without reaping is not supported on this platform")

func (h procHandle) waitExited() error { return errNoNonReapingWait }

func (h procHandle) signal(sig syscall.Signal) error { return syscall.Kill(h.pid, sig) }

func (h procHandle) release() {}

// waitGroupGone kills group pgid until it is gone, for at most a few
// seconds: without /proc, zombies awaiting init cannot be told apart.
func waitGroupGone(pgid int, log logr.Logger) {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("agent's process group still exists after SIGKILL", "pgid", pgid)
}

// startTicks is unknown outside Linux.
func startTicks(int) uint64 { return 0 }

// isMember is false outside Linux, where NotifyReady, the only reason to
// ask, is refused.
func (c *child) isMember(int) bool { return false }

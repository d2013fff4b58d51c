//go:build !linux

package supervisor

import (
	"errors"
	"syscall"
	"time"
)

// Outside Linux there is no pidfd, no PR_SET_PDEATHSIG and no /proc stat
// to read: the child is reaped by os.Process.Wait and the rest of its group
// is killed until kill(2) no longer finds it.

func sysProcAttr(s *settings) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
}

var errNoNonReapingWait = errors.New("waiting without reaping is not supported on this platform")

func waitExitNoReap(int, bool, func(error)) error { return errNoNonReapingWait }

// waitGroupGone kills group pgid until it is gone, for at most a few
// seconds: without /proc, zombies awaiting init cannot be told apart.
func waitGroupGone(pgid int, s *settings) {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.log.Info("agent's process group still exists after SIGKILL", "pgid", pgid)
}

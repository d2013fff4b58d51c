package supervisor

import (
	"errors"
	"syscall"
)

// reap collects the leader's exit status. After waitExited it does not
// block; the PID is still ours until this returns, as only tend reaps it.
func (h procHandle) reap() (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(h.pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			return ws, err
		}
	}
}

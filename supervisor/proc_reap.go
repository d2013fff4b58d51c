package supervisor

import (
	"errors"
	"fmt"
	"syscall"
)

// reap collects the leader's exit status. After waitExited it does not
// block; the PID is still ours until this returns, as only tend reaps it.
func (h procHandle) reap() (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(h.pid, &ws, 0, nil)
		switch {
		case err == nil:
			return ws, nil
		case !errors.Is(err, syscall.EINTR):
			return ws, fmt.Errorf("wait: %w", err)
		}
	}
}

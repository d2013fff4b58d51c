//go:build !linux

package supervisor

import (
	"errors"
	"syscall"
)

// Outside Linux there is no notify socket, so no MAINPID= to follow.
type successor struct{ pid int }

func openSuccessor(int, func(int) bool) (*successor, error) {
	return nil, errors.New("MAINPID= is only supported on Linux")
}
func (s *successor) signal(syscall.Signal) error            { return syscall.ENOSYS }
func (s *successor) waitExited()                            {}
func (s *successor) exitStatus() (syscall.WaitStatus, bool) { return 0, false }
func (s *successor) close()                                 {}

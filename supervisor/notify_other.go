//go:build !linux

package supervisor

import (
	"errors"
	"syscall"
	"time"
)

// Outside Linux there is no SO_PASSCRED to tell who sent READY=1, so
// NotifyReady is rejected by New; these keep the package building.

type notifySocket struct {
	*notifyState
	leader int
	member func(pid int) bool
	adopt  func(pid int) error
}

var errNoNotify = errors.New("sd_notify readiness is only supported on Linux")

func newNotifySocket(*syscall.Credential, *fdStore) (*notifySocket, error) { return nil, errNoNotify }
func (n *notifySocket) env(time.Duration) []string                         { return nil }
func (n *notifySocket) read()                                              {}
func (n *notifySocket) flush()                                             {}
func (n *notifySocket) close()                                             {}

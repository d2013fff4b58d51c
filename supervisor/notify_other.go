//go:build !linux

package supervisor

import (
	"errors"
	"sync/atomic"
	"syscall"
	"time"
)

// Outside Linux there is no SO_PASSCRED to tell who sent READY=1, so
// NotifyReady is rejected by New; these keep the package building.

type notifySocket struct {
	pgid          int
	ready, news   chan struct{}
	lastKeepalive atomic.Int64
	status        atomic.Pointer[string]
	triggered     atomic.Bool
	extendTo      atomic.Int64
}

var errNoNotify = errors.New("sd_notify readiness is only supported on Linux")

func newNotifySocket(*syscall.Credential) (*notifySocket, error) { return nil, errNoNotify }
func (n *notifySocket) env(time.Duration) []string               { return nil }
func (n *notifySocket) read()                                    {}
func (n *notifySocket) close()                                   {}

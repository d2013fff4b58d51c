//go:build !linux

package supervisor

import (
	"errors"
	"os"
)

// Outside Linux, Spec.Listen is rejected by New.
func (a listenAddress) bind() (*os.File, error) {
	return nil, errors.New("socket activation is only supported on Linux")
}

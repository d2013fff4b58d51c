//go:build !linux

package supervisor

import (
	"errors"
	"os"

	"github.com/tend-dev/tend/internal/cgroup"
)

// Outside Linux a child cannot be detached: there is no pidfd to stop
// waiting on without reaping it, so Handover fails before the exec.

var errHandoverPlatform = errors.New("hand-over across exec is only supported on Linux")

func (c *child) detach(<-chan Exit) (Exit, bool, error) { return Exit{}, false, errHandoverPlatform }
func (c *child) reattach(*settings)                     {}
func (c *child) describe(*childState)                   {}

// No binary is ever handed a Group here (the state is read on Linux
// only), so these are never called.
func resumeChild(*settings, *agentFiles, *childState, *cgroup.Agent, *cgroup.Leaf) *child { return nil }
func verifyChild(*childState) error                                                       { return errHandoverPlatform }
func killUnverified(*childState)                                                          {}
func ownChildren() []int                                                                  { return nil }
func fdOf(*os.File) int                                                                   { return -1 }

func execHandover(string, []string, []string, *handoverState, []int) error {
	return errHandoverPlatform
}

//go:build !linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// Outside Linux there are no cgroups: Detect fails, so a host never gets
// a Parent, and the other types exist only for the callers to compile.

var errNotLinux = fmt.Errorf("%w: cgroups are Linux only (this is %s)", ErrUnavailable, runtime.GOOS)

// Hierarchy is never obtained outside Linux.
type Hierarchy struct{}

// Detect always fails outside Linux.
func Detect() (*Hierarchy, error) { return nil, errNotLinux }

// Describe is never called outside Linux.
func (*Hierarchy) Describe() string { return "" }

// Parent is never obtained outside Linux.
type Parent struct{}

// Leftover is an agent cgroup a previous instance left populated.
type Leftover struct {
	Agent string
	Pids  []int
}

// Open always fails outside Linux.
func Open(*Hierarchy, string) (*Parent, error) { return nil, errNotLinux }

// Check always fails outside Linux.
func (*Parent) Check(Limits) error { return errNotLinux }

// Path is empty outside Linux.
func (*Parent) Path() string { return "" }

// Sweep finds nothing outside Linux.
func (*Parent) Sweep(func([]int)) ([]Leftover, error) { return nil, nil }

// Agent always fails outside Linux.
func (*Parent) Agent(string) (*Agent, error) { return nil, errNotLinux }

// Close does nothing outside Linux.
func (*Parent) Close() error { return nil }

// Name is empty outside Linux.
func (*Parent) Name() string { return "" }

// LockFile is nil outside Linux.
func (*Parent) LockFile() *os.File { return nil }

// Resume always fails outside Linux.
func Resume(*Hierarchy, string, *os.File) (*Parent, error) { return nil, errNotLinux }

// ResumeAgent always fails outside Linux.
func (*Parent) ResumeAgent(string, AgentState, string) (*Agent, *Leaf, error) {
	return nil, nil, errNotLinux
}

// State is empty outside Linux.
func (*Agent) State() AgentState { return AgentState{} }

// Agent is never obtained outside Linux.
type Agent struct{}

// Path is empty outside Linux.
func (*Agent) Path() string { return "" }

// SetLimits always fails outside Linux.
func (*Agent) SetLimits(Limits) error { return errNotLinux }

// Usage always fails outside Linux.
func (*Agent) Usage() (Usage, error) { return Usage{}, errNotLinux }

// OOMKills is 0 outside Linux.
func (*Agent) OOMKills() uint64 { return 0 }

// NewLeaf always fails outside Linux.
func (*Agent) NewLeaf() (*Leaf, error) { return nil, errNotLinux }

// Spawn calls fork outside Linux.
func (*Agent) Spawn(fork func() error) error { return fork() }

// Remove does nothing outside Linux.
func (*Agent) Remove() error { return nil }

// Leaf is never obtained outside Linux.
type Leaf struct{}

// Path is empty outside Linux.
func (*Leaf) Path() string { return "" }

// FD is -1 outside Linux.
func (*Leaf) FD() int { return -1 }

// Spawned does nothing outside Linux.
func (*Leaf) Spawned() {}

// Procs always fails outside Linux.
func (*Leaf) Procs() ([]int, error) { return nil, errNotLinux }

// Contains is false outside Linux.
func (*Leaf) Contains(int) bool { return false }

// Kill always fails outside Linux.
func (*Leaf) Kill() error { return errNotLinux }

// WaitEmpty returns at once outside Linux.
func (*Leaf) WaitEmpty(func([]int)) {}

// Remove does nothing outside Linux.
func (*Leaf) Remove() error { return errors.ErrUnsupported }

// Release does nothing outside Linux.
func (*Leaf) Release() error { return errors.ErrUnsupported }

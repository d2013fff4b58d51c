package cgroup

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	"golang.org/x/sys/unix"
)

// A host that re-executes itself hands its cgroups to the new binary:
// the parent's lock crosses the exec as an open descriptor (an flock
// belongs to the open file, so the new binary holds it without a gap and
// never sweeps its own agents), and each agent's cgroup and current leaf
// are found again by path.

// LockFile is the open directory that holds the parent's lock.
func (p *Parent) LockFile() *os.File { return p.lock }

// Resume takes over the parent opened with path (Name), locked by lock (a descriptor
// LockFile gave the previous binary), without sweeping it: what runs
// there is this host's.
func Resume(h *Hierarchy, path string, lock *os.File) (*Parent, error) {
	p := newParent(h, path)
	var held, want unix.Stat_t
	if err := unix.Fstat(int(lock.Fd()), &held); err != nil {
		return nil, fmt.Errorf("cgroup parent %s: lock: %w", p.dir, err)
	}
	if err := unix.Stat(p.dir, &want); err != nil || held.Dev != want.Dev || held.Ino != want.Ino {
		return nil, fmt.Errorf("cgroup parent %s: the lock handed over is not on it", p.dir)
	}
	// The lock is this open file's already; taking it again on the same
	// file cannot block, and fails only if it is not a lock we hold.
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return nil, fmt.Errorf("cgroup parent %s: lock: %w", p.dir, err)
	}
	p.lock = lock
	if h.v1 == nil {
		p.enableControllers()
	}
	return p, nil
}

// State is what ResumeAgent needs of the agent's cgroup.
func (a *Agent) State() AgentState {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := AgentState{Joined: slices.Clone(a.joined), Next: a.next}
	if a.spare != nil {
		s.Spare = a.spare.dir
	}
	return s
}

// ResumeAgent opens the existing cgroup of agent name, whose processes
// are this host's, as State described it. current is the leaf of the
// agent's live child ("" if none); the Leaf returned for it is nil then.
func (p *Parent) ResumeAgent(name string, s AgentState, current string) (*Agent, *Leaf, error) {
	a := &Agent{parent: p, dir: filepath.Join(p.dir, name), v1: map[string]string{}, joined: slices.Clone(s.Joined), next: s.Next}
	for c, d := range p.v1 {
		a.v1[c] = filepath.Join(d, name)
	}
	if s.Spare != "" && filepath.Dir(s.Spare) == a.dir {
		a.spare = &Leaf{dir: s.Spare, parent: p, agent: a}
	}
	var err error
	if a.v2m, err = fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{SkipDevices: true}}, a.dir); err != nil {
		return nil, nil, err
	}
	if current == "" {
		return a, nil, nil
	}
	if filepath.Dir(current) != a.dir {
		return nil, nil, fmt.Errorf("cgroup %s: not a leaf of %s", current, a.dir)
	}
	if _, err := os.Stat(current); err != nil {
		return nil, nil, fmt.Errorf("cgroup %s: %w", current, err)
	}
	a.current = &Leaf{dir: current, parent: p, agent: a}
	return a, a.current, nil
}

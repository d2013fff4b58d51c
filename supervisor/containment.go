package supervisor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/cgroup"
)

// Containment says where a Group keeps its members' processes. Where the
// host may create cgroups (Linux, cgroup v2 mounted, root or a delegated
// subtree), each member gets a cgroup of its own under a parent cgroup
// that belongs to this host instance, and each child a leaf in it:
// nothing the agent forks, setsid'd or double-forked, can leave it.
// Elsewhere members live in process groups (see "Containment" in the
// package documentation for what holds where).
type Containment struct {
	// Name identifies this host instance among the programs on the
	// machine: the parent cgroup is "tend.<Name>" under the host's own
	// cgroup. A later instance of the same Name kills what a crashed one
	// left there before it starts anything, and a second live one is
	// refused (NewGroup fails), so two hosts must never share a Name.
	// Empty: derived from the Store when it is a *FileStore (the state
	// file's absolute path identifies the instance: "tend.store-HASH"),
	// else a parent unique to this Group ("tend.EXE.PID.RANDOM"), which no
	// later instance can find.
	Name string
	// Parent, when set, is the parent cgroup instead: a path from the
	// root of the cgroup hierarchies ("/edge/agents") or relative to the
	// host's own cgroup ("agents").
	Parent string
	// Disabled keeps every member in a process group even where cgroups
	// are available.
	Disabled bool
}

// ErrInstanceRunning: NewGroup found the Group's parent cgroup or its
// FileStore held by another live instance of the same host (the same
// Containment name, or the same state file).
var ErrInstanceRunning = cgroup.ErrLocked

// containment is what a Group found: the parent cgroup its members go
// in, or why there is none.
type containment struct {
	parent *cgroup.Parent // nil: process groups
	why    error          // why parent is nil
}

// contain opens the Group's parent cgroup, sweeps what a crashed instance
// left in it, and says once, in the Group's log, why members live in
// process groups when they must.
func contain(opts GroupOptions, log logr.Logger) (containment, error) {
	if opts.Containment.Disabled {
		return containment{why: errors.New("containment disabled")}, nil
	}
	h, err := cgroup.Detect()
	if err != nil {
		log.Info("agents are kept in process groups, not cgroups: descendants that leave the group, or outlive a crash of the host, are not contained", "reason", err.Error())
		return containment{why: err}, nil
	}
	path, err := parentPath(opts)
	if err != nil {
		return containment{}, err
	}
	parent, err := cgroup.Open(h, path)
	if err != nil {
		return containment{}, fmt.Errorf("containment: %w", err)
	}
	left, err := parent.Sweep(func(pids []int) {
		log.Error(errors.New("leftover processes survive SIGKILL"),
			"what a previous instance of this host left is stuck (uninterruptible sleep?); waiting for it before any agent starts",
			"parent", parent.Path(), "pids", pids)
	})
	for _, l := range left {
		log.Info("killed what a previous instance of this host left running", "agent", l.Agent, "pids", l.Pids)
	}
	if err != nil {
		parent.Close() //nolint:errcheck // the sweep's error says more
		return containment{}, fmt.Errorf("containment: %w", err)
	}
	log.V(1).Info("agents are contained in cgroups", "parent", parent.Path(), "layout", h.Describe())
	return containment{parent: parent}, nil
}

// CgroupParent returns the directory of the parent cgroup the Group's
// members are contained in, or the reason they live in process groups
// instead (the one NewGroup logged).
func (g *Group) CgroupParent() (string, error) {
	if g.contain.parent == nil {
		return "", g.contain.why
	}
	return g.contain.parent.Path(), nil
}

// parentPath is where the Group's parent cgroup goes.
func parentPath(opts GroupOptions) (string, error) {
	c := opts.Containment
	switch {
	case c.Parent != "":
		return c.Parent, nil
	case c.Name != "":
		if err := validateName("containment.name", c.Name); err != nil {
			return "", err
		}
		return "tend." + c.Name, nil
	}
	if fs, ok := opts.Store.(*FileStore); ok {
		// The state file alone names the instance: a host binary that
		// is renamed by an upgrade still finds what it left.
		abs, _ := filepath.Abs(fs.path)
		sum := sha256.Sum256([]byte(abs))
		return "tend.store-" + hex.EncodeToString(sum[:6]), nil
	}
	exe, _ := os.Executable()
	var unique [6]byte
	rand.Read(unique[:]) //nolint:errcheck // never fails (crypto/rand)
	return "tend." + filepath.Base(exe) + "." + strconv.Itoa(os.Getpid()) + "." + hex.EncodeToString(unique[:]), nil
}

// box returns the cgroup of a new member named name, nil without
// containment.
func (c containment) box(name string) *agentBox {
	if c.parent == nil {
		return nil
	}
	return &agentBox{parent: c.parent, name: name}
}

// check reports a limit the Group's containment cannot apply, naming its
// config key.
func (c containment) check(r Resources) error {
	if r.isZero() {
		return nil
	}
	if c.parent == nil {
		return config.Invalid("resources", r, "limits need cgroups, and this Group has none: "+c.why.Error())
	}
	var le *cgroup.LimitError
	if err := c.parent.Check(r.limits()); errors.As(err, &le) {
		return config.Invalid("resources."+le.Key, r.value(le.Key), le.Reason)
	} else if err != nil {
		return config.Invalid("resources", r, err.Error())
	}
	return nil
}

// close removes the parent cgroup; members' cgroups are gone by then.
func (c containment) close() error {
	if c.parent == nil {
		return nil
	}
	return c.parent.Close()
}

// agentBox is an agent's cgroup: made at its first spawn, it keeps the
// agent's limits and accounting across children, and each child gets a
// leaf in it (see cgroup.Agent.NewLeaf). Process.Close (Group.Remove)
// removes it.
type agentBox struct {
	parent *cgroup.Parent
	name   string

	mu     sync.Mutex
	cg     *cgroup.Agent // nil until the first spawn, and after remove
	limits cgroup.Limits // what cg has applied
}

// newLeaf makes the cgroup for the next child, with limits applied first.
func (b *agentBox) newLeaf(limits cgroup.Limits) (*cgroup.Agent, *cgroup.Leaf, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cg == nil {
		cg, err := b.parent.Agent(b.name)
		if err != nil {
			return nil, nil, err
		}
		if err := cg.SetLimits(limits); err != nil {
			cg.Remove() //nolint:errcheck // nothing ran in it
			return nil, nil, fmt.Errorf("resources: %w", err)
		}
		b.cg, b.limits = cg, limits
	} else if err := b.apply(limits); err != nil {
		return nil, nil, err
	}
	leaf, err := b.cg.NewLeaf()
	return b.cg, leaf, err
}

// setLimits changes the limits in place; a running child is limited at
// once. Before the first spawn they are only recorded.
func (b *agentBox) setLimits(limits cgroup.Limits) error {
	_, err := b.withCgroup(func(*cgroup.Agent) error { return b.apply(limits) })
	return err
}

// apply sets limits if they differ from what is applied; under mu.
func (b *agentBox) apply(limits cgroup.Limits) error {
	if limits == b.limits {
		return nil
	}
	if err := b.cg.SetLimits(limits); err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	b.limits = limits
	return nil
}

// usage reads the agent's tree-wide usage; ok is false before its first
// spawn.
func (b *agentBox) usage() (u cgroup.Usage, ok bool, err error) {
	ok, err = b.withCgroup(func(cg *cgroup.Agent) (err error) {
		u, err = cg.Usage()
		return err
	})
	return u, ok, err
}

// remove deletes the agent's cgroup once its last child is gone.
func (b *agentBox) remove() error {
	_, err := b.withCgroup(func(cg *cgroup.Agent) error {
		err := cg.Remove()
		b.cg, b.limits = nil, cgroup.Limits{}
		return err
	})
	return err
}

// withCgroup runs fn under mu with the agent's cgroup, if it has one
// (made at its first spawn); ok says whether it did. A nil box is an agent
// in a process group.
func (b *agentBox) withCgroup(fn func(*cgroup.Agent) error) (ok bool, err error) {
	if b == nil {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cg == nil {
		return false, nil
	}
	return true, fn(b.cg)
}

// describe is the agent's cgroup and its state, for a hand-over; empty
// if it has none.
func (b *agentBox) describe() (dir string, state cgroup.AgentState) {
	b.withCgroup(func(cg *cgroup.Agent) error { //nolint:errcheck // fn never fails
		dir, state = cg.Path(), cg.State()
		return nil
	})
	return dir, state
}

// adopt gives the box the agent cgroup a hand-over resumed, with the
// limits the previous binary applied.
func (b *agentBox) adopt(cg *cgroup.Agent, limits cgroup.Limits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cg, b.limits = cg, limits
}

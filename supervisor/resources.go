package supervisor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/cgroup"
)

// Resources are an agent's hard limits, which the kernel enforces on its
// whole process tree through the agent's cgroup: only for a Group's
// members where cgroups are available (see Containment), and a Spec that
// sets one elsewhere is refused, never silently unlimited. Zero fields
// set no limit. They are applied before the child runs, and Apply changes
// them in place, without a restart.
type Resources struct {
	// MemoryMax is the most memory the tree may use, memory and swap
	// together as a Kubernetes memory limit (systemd's MemoryMax=):
	// beyond it the OOM killer kills inside the agent, and the Exit says
	// so (Exit.OOMKilled). "512Mi", "1Gi", or bytes.
	MemoryMax config.Bytes `json:"memory_max,omitempty"`
	// MemoryHigh throttles and reclaims the tree above it without killing
	// (systemd's MemoryHigh=). Needs the cgroup v2 memory controller.
	MemoryHigh config.Bytes `json:"memory_high,omitempty"`
	// CPU is how many cores' worth of CPU time the tree may use: 0.5,
	// "500m" or "50%" (a Kubernetes CPU limit, systemd's CPUQuota=), over
	// 100 ms periods. At least 0.01.
	CPU config.CPUs `json:"cpu,omitempty"`
	// PidsMax is how many processes and threads the tree may hold
	// (systemd's TasksMax=): a fork bomb stops at it.
	PidsMax int64 `json:"pids_max,omitempty"`
}

func (r Resources) isZero() bool { return r == Resources{} }

// limit is one key of Resources: its config key, its value, and whether
// it is set.
type limit struct {
	key string
	val fmt.Stringer
	set bool
}

// each lists r's keys, the one table String and value read.
func (r Resources) each() []limit {
	return []limit{
		{"memory_max", r.MemoryMax, r.MemoryMax > 0},
		{"memory_high", r.MemoryHigh, r.MemoryHigh > 0},
		{"cpu", r.CPU, r.CPU > 0},
		{"pids_max", count(r.PidsMax), r.PidsMax > 0},
	}
}

// String lists the limits set, as keys: "memory_max=512Mi cpu=0.5".
func (r Resources) String() string {
	var parts []string
	for _, l := range r.each() {
		if l.set {
			parts = append(parts, l.key+"="+l.val.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// limits is r as the cgroup layer takes it.
func (r Resources) limits() cgroup.Limits {
	return cgroup.Limits{MemoryMax: int64(r.MemoryMax), MemoryHigh: int64(r.MemoryHigh), CPU: float64(r.CPU), PidsMax: r.PidsMax}
}

// value is the value of the limit under key, for errors.
func (r Resources) value(key string) any {
	for _, l := range r.each() {
		if l.key == key {
			return l.val
		}
	}
	return r
}

// validate checks the values themselves; whether the host can apply them
// is the Group's question (containment.check).
func (r Resources) validate() error {
	switch {
	case r.MemoryMax < 0:
		return config.Invalid("resources.memory_max", r.MemoryMax, "must not be negative")
	case r.MemoryHigh < 0:
		return config.Invalid("resources.memory_high", r.MemoryHigh, "must not be negative")
	case r.MemoryMax > 0 && r.MemoryHigh > r.MemoryMax:
		return config.Invalid("resources.memory_high", r.MemoryHigh, "must not exceed memory_max ("+r.MemoryMax.String()+")")
	case r.CPU < 0 || r.CPU > 0 && r.CPU < 0.01:
		return config.Invalid("resources.cpu", r.CPU, "must be at least 0.01 cores (the kernel's 1 ms per 100 ms period)")
	case r.PidsMax < 0:
		return config.Invalid("resources.pids_max", r.PidsMax, "must not be negative")
	}
	return nil
}

// TreeUsage is what a contained agent's whole process tree uses, read
// from its cgroup's stat files: every process it ever forked, wherever it
// went, at the cost of a few small reads rather than a walk of /proc.
type TreeUsage struct {
	// CPU is the CPU time the agent's children and all their descendants
	// have used, since the agent's first child.
	CPU time.Duration
	// MemoryBytes is the memory charged to the tree now, page cache
	// included (what memory_max bounds); RSSBytes is its anonymous part.
	MemoryBytes, RSSBytes uint64
	// Processes counts its live processes now; Tasks its processes and
	// threads, as pids_max counts them (zombies until reaped included).
	Processes int
	Tasks     int
	// Accounted lists which controllers' figures the host's cgroup setup
	// provides besides CPU and Processes: "memory" (MemoryBytes,
	// RSSBytes) and "pids" (Tasks). On hybrid machines, whose controllers
	// are v1, only those a limit of the agent needs: an agent joins a v1
	// controller only for a limit.
	Accounted []string
}

// ErrNotContained: TreeUsage of an agent that has no cgroup (not a
// Group's member, cgroups unavailable, or not started yet).
var ErrNotContained = errors.New("agent not contained in a cgroup")

// TreeUsage reads the agent's tree-wide usage from its cgroup;
// ErrNotContained for an agent in a process group. It fits a
// health.NewTreeResources probe through a one-line adapter.
func (p *Process) TreeUsage() (TreeUsage, error) {
	u, ok, err := p.files.box.usage()
	switch {
	case err != nil:
		return TreeUsage{}, fmt.Errorf("agent %q: %w", p.name, err)
	case !ok:
		return TreeUsage{}, fmt.Errorf("agent %q: %w", p.name, ErrNotContained)
	}
	return TreeUsage{CPU: u.CPU, MemoryBytes: u.MemoryBytes, RSSBytes: u.AnonBytes,
		Processes: u.Processes, Tasks: int(u.Tasks), Accounted: u.Accounted}, nil
}

// count prints a plain number.
type count int64

func (c count) String() string { return strconv.FormatInt(int64(c), 10) }

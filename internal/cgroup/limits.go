package cgroup

import (
	"errors"
	"fmt"
	"time"
)

// Limits are an agent's resource limits; a zero field sets none.
type Limits struct {
	MemoryMax  int64   // bytes: the OOM killer acts above it
	MemoryHigh int64   // bytes: reclaimed and throttled above it (v2 only)
	CPU        float64 // cores: CPU time per wall-clock second
	PidsMax    int64   // processes and threads
}

// Usage is what an agent's whole process tree uses, from its cgroup.
type Usage struct {
	CPU         time.Duration // CPU time consumed by every process that ran in it
	MemoryBytes uint64        // memory charged to it now, page cache included
	AnonBytes   uint64        // of which anonymous memory: the tree's RSS, less shared file pages
	Processes   int           // processes in it now (zombies not counted)
	Tasks       uint64        // processes and threads in it now, as pids_max counts them
	// Accounted says which controllers' figures the cgroup setup
	// provides besides CPU and Processes: "memory" (MemoryBytes,
	// AnonBytes) and "pids" (Tasks). On hybrid machines, only those a
	// limit of the agent needs.
	Accounted []string
}

// ErrUnavailable wraps every reason the host cannot use cgroups.
var ErrUnavailable = errors.New("cgroups unavailable")

// ErrLocked: another live instance of the same host holds the parent.
var ErrLocked = errors.New("held by another live instance of this host")

// cpuPeriod is the CFS period limits are expressed in, systemd's and the
// kubelet's: 100 ms.
const cpuPeriod = 100_000

// cpuQuota is the quota in microseconds per cpuPeriod for cores, at least
// the 1 ms the kernel accepts.
func cpuQuota(cores float64) int64 { return max(int64(cores*cpuPeriod), 1000) }

// needs names the controller each set limit needs, by config key.
func (l Limits) needs() []need {
	var out []need
	if l.MemoryMax > 0 {
		out = append(out, need{"memory_max", "memory"})
	}
	if l.MemoryHigh > 0 {
		out = append(out, need{"memory_high", "memory"})
	}
	if l.CPU > 0 {
		out = append(out, need{"cpu", "cpu"})
	}
	if l.PidsMax > 0 {
		out = append(out, need{"pids_max", "pids"})
	}
	return out
}

type need struct{ key, controller string }

// LimitError names the limit a cgroup setup cannot apply, and why.
type LimitError struct {
	Key    string // memory_max, memory_high, cpu or pids_max
	Reason string
}

func (e *LimitError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Reason) }

// AgentState is an agent cgroup as a host hands it to the binary that
// re-executes it: the v1 controllers its processes joined, the number of
// its last leaf, and its spare leaf if it has one.
type AgentState struct {
	Joined []string `json:"joined,omitempty"`
	Next   int      `json:"next,omitempty"`
	Spare  string   `json:"spare,omitempty"`
}

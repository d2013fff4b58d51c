// Package cgroup keeps each agent of a host in a control group of its own:
// a parent cgroup per host instance, locked so that a second instance of
// the same host cannot take it, a cgroup per agent that carries its
// limits and its accounting, and a fresh leaf per child inside it, which
// the child is cloned straight into and which is killed and awaited as a
// whole. The cgroup file formats (limits, stats, OOM counters) are read
// and written through github.com/opencontainers/cgroups, runc's library.
//
// The v2 (unified) hierarchy tracks the processes: cgroup.kill ends them
// all at once, cgroup.events says when none is left. On hybrid machines,
// where the controllers are bound to v1 hierarchies, the agent also gets a
// directory in the v1 memory, pids and cpu hierarchies for its limits and
// accounting, joined before the child's first instruction (see Agent.Spawn).
// A machine with no v2 hierarchy at all is not supported: the host falls
// back to process groups.
package cgroup

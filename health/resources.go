package health

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limits are the resource thresholds of a Resources probe. The daemon config
// format's cpu_threshold and memory_threshold map to CPUPercent and
// RSSBytes.
type Limits struct {
	// CPUPercent is the most CPU the agent may use, in percent of one core
	// (200 is two full cores); 0 means no CPU limit.
	CPUPercent float64
	// RSSBytes is the most resident memory it may hold; 0 means no limit.
	RSSBytes uint64
	// Sustain is how long usage must stay over a limit before the probe
	// fails, so a burst does not count. Zero means DefaultSustain.
	Sustain time.Duration
	// Tree counts the agent's descendants too (a shell wrapper, workers).
	Tree bool
}

// DefaultSustain is how long a resource limit must be exceeded by default.
const DefaultSustain = time.Minute

// Usage is one resource sample of an agent (and its tree, if asked).
type Usage struct {
	// CPUPercent is the CPU used since the previous sample, in percent of
	// one core; 0 on the first sample.
	CPUPercent float64
	// RSSBytes is resident memory, summed over the processes sampled.
	RSSBytes uint64
	// Processes counts the processes sampled.
	Processes int
}

// Resources samples the CPU and memory of the process pid() names and
// fails once a limit has been exceeded for Limits.Sustain. CPU percent is
// the difference of CPU times between two samples over the time between
// them (gopsutil's CPUPercent is a lifetime average and hides a process
// that started spinning an hour in). One sampler per PID is kept between
// checks and dropped when its process goes away or the PID is reused.
//
// On Linux it reads /proc/PID/stat itself, once per process per sample;
// elsewhere it asks gopsutil v3 (see readProc).
type Resources struct {
	pid    func() int
	tree   func() (TreeUsage, error) // NewTreeResources: instead of pid
	limits Limits
	// treeCPU and treeAt are the previous tree sample's CPU time and time.
	treeCPU time.Duration
	treeAt  time.Time

	mu        sync.Mutex
	samplers  map[int]*sampler
	overSince time.Time
	last      Usage
	buf       [512]byte
}

// procInfo is what a Resources probe needs of one process, read by
// readProc (proc_linux.go, proc_other.go).
type procInfo struct {
	ppid  int
	start uint64 // when it started, in a unit of the platform: tells PID reuse
	cpu   time.Duration
	rss   uint64
	live  bool // not a zombie
}

type sampler struct {
	started uint64        // start time, to notice PID reuse
	cpu     time.Duration // CPU time at the last sample
	at      time.Time
}

// NewResources returns a Resources probe for the process pid() names.
func NewResources(pid func() int, limits Limits) *Resources {
	if limits.Sustain <= 0 {
		limits.Sustain = DefaultSustain
	}
	return &Resources{pid: pid, limits: limits, samplers: map[int]*sampler{}}
}

// TreeUsage is one reading of an agent's whole process tree, as its
// cgroup counts it.
type TreeUsage struct {
	CPU       time.Duration // CPU time the tree has used so far
	RSSBytes  uint64        // resident (anonymous) memory of the tree now
	Processes int           // processes and threads in it now
}

// NewTreeResources returns a Resources probe that samples the agent's
// whole tree through usage, typically a contained agent's cgroup
// (supervisor.Process.TreeUsage, through a one-line adapter): a few small
// stat files per sample instead of a walk of /proc, and descendants that
// left the agent's process group or session are counted too. Limits.Tree
// is implied; CPU percent is the difference of CPU times between samples,
// as for NewResources.
func NewTreeResources(usage func() (TreeUsage, error), limits Limits) *Resources {
	r := NewResources(nil, limits)
	r.tree = usage
	return r
}

// Check samples and fails when a limit has been exceeded for Sustain.
func (r *Resources) Check(ctx context.Context) error {
	u, err := r.Sample(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var over string
	switch {
	case r.limits.CPUPercent > 0 && u.CPUPercent > r.limits.CPUPercent:
		over = fmt.Sprintf("CPU %.1f%% over %.1f%%", u.CPUPercent, r.limits.CPUPercent)
	case r.limits.RSSBytes > 0 && u.RSSBytes > r.limits.RSSBytes:
		over = fmt.Sprintf("RSS %d bytes over %d", u.RSSBytes, r.limits.RSSBytes)
	}
	now := time.Now()
	if over == "" {
		r.overSince = time.Time{}
		return nil
	}
	if r.overSince.IsZero() {
		r.overSince = now
	}
	if held := now.Sub(r.overSince); held >= r.limits.Sustain {
		return fmt.Errorf("%s for %v", over, held.Round(time.Millisecond))
	}
	return nil
}

// Sample measures the agent (and its tree, with Limits.Tree) now.
func (r *Resources) Sample(context.Context) (Usage, error) {
	if r.tree != nil {
		return r.sampleTree()
	}
	pid := r.pid()
	r.mu.Lock()
	defer r.mu.Unlock()
	root, err := readProc(pid, r.buf[:])
	if pid <= 0 || err != nil || !root.live {
		return Usage{}, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	now := time.Now()
	u := Usage{}
	r.account(&u, pid, root, now)
	if r.limits.Tree {
		for p, st := range descendants(pid) {
			r.account(&u, p, st, now)
		}
	}
	for p, s := range r.samplers {
		if !s.at.Equal(now) {
			delete(r.samplers, p) // not seen in this sample: gone
		}
	}
	r.last = u
	return u, nil
}

// sampleTree takes one tree-wide reading from r.tree.
func (r *Resources) sampleTree() (Usage, error) {
	t, err := r.tree()
	if err != nil {
		return Usage{}, fmt.Errorf("%w: %w", ErrNoProcess, err)
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	u := Usage{RSSBytes: t.RSSBytes, Processes: t.Processes}
	// A CPU time that went back is a new cgroup (the agent was removed
	// and added again): start over, as for a new PID.
	if wall := now.Sub(r.treeAt); !r.treeAt.IsZero() && t.CPU >= r.treeCPU && wall > 0 {
		u.CPUPercent = 100 * float64(t.CPU-r.treeCPU) / float64(wall)
	}
	r.treeCPU, r.treeAt, r.last = t.CPU, now, u
	return u, nil
}

// account adds one process's sample to u.
func (r *Resources) account(u *Usage, pid int, st procInfo, now time.Time) {
	s := r.samplers[pid]
	switch {
	case s == nil || s.started != st.start:
		s = &sampler{started: st.start}
		r.samplers[pid] = s
	case st.cpu >= s.cpu:
		if wall := now.Sub(s.at); wall > 0 {
			u.CPUPercent += 100 * float64(st.cpu-s.cpu) / float64(wall)
		}
	}
	s.cpu, s.at = st.cpu, now
	u.RSSBytes += st.rss
	u.Processes++
}

// Last returns the latest sample.
func (r *Resources) Last() Usage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// descendants returns every live descendant of root with its sample, from
// one scan of the process table (gopsutil's Children forks pgrep).
func descendants(root int) map[int]procInfo {
	pids, err := processIDs()
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	stats := map[int]procInfo{}
	var buf [512]byte
	for _, p := range pids {
		if st, err := readProc(p, buf[:]); err == nil && st.live {
			children[st.ppid] = append(children[st.ppid], p)
			stats[p] = st
		}
	}
	out := map[int]procInfo{}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if _, seen := out[c]; !seen && c != root {
				out[c] = stats[c]
				queue = append(queue, c)
			}
		}
	}
	return out
}

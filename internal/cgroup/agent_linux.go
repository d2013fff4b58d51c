package cgroup

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/cgroups/fscommon"
	"golang.org/x/sys/unix"
)

// Agent is one agent's cgroup: the v2 directory its children's leaves
// are made in, and on hybrid machines its v1 directories. Its limits and
// accounting cover every child it ever had, and so the whole tree of
// each.
type Agent struct {
	parent *Parent
	dir    string            // v2
	v1     map[string]string // controller → directory
	v2m    *fs2.Manager

	mu   sync.Mutex
	next int // the number of the next leaf
	// joined are the v1 controllers the agent's processes are placed in:
	// those its limits need. Joining costs each spawn two writes per
	// controller, so an agent without limits pays none.
	joined []string
	// current is the leaf of the agent's live child, if any; spare an
	// empty leaf its last child left, never killed, for the next one.
	current, spare *Leaf
}

// Agent creates the cgroup of the agent name under the parent. A cgroup
// of that name that still holds processes is refused, never reused: they
// are not this instance's (Sweep removed what a dead one left).
func (p *Parent) Agent(name string) (*Agent, error) {
	a := &Agent{parent: p, dir: filepath.Join(p.dir, name), v1: map[string]string{}}
	for c, d := range p.v1 {
		a.v1[c] = filepath.Join(d, name)
	}
	for _, dir := range a.dirs() {
		if pids, _ := cgroups.GetAllPids(dir); len(pids) > 0 {
			return nil, fmt.Errorf("cgroup %s holds processes %v that are not this host's; not reused", dir, pids)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", dir, err)
		}
	}
	var err error
	a.v2m, err = fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{SkipDevices: true}}, a.dir)
	return a, err
}

func (a *Agent) dirs() []string { return allDirs(a.dir, a.v1) }

// Path is the agent's v2 directory.
func (a *Agent) Path() string { return a.dir }

// SetLimits applies l, lifting the limits it leaves at zero; a running
// child is limited at once. memory_max bounds memory and swap together,
// as a Kubernetes limit does.
func (a *Agent) SetLimits(l Limits) error {
	if err := a.parent.Check(l); err != nil {
		return err
	}
	r := &cgroups.Resources{SkipDevices: true}
	unlimited := int64(-1)
	has := func(c string) bool {
		_, v1 := a.v1[c]
		_, off := a.parent.noLimits[c]
		return v1 || (a.parent.h.v1 == nil && !off)
	}
	if has("memory") {
		r.Memory = orValue(l.MemoryMax, unlimited)
		if dir, ok := a.v1["memory"]; !ok || cgroups.PathExists(filepath.Join(dir, "memory.memsw.limit_in_bytes")) {
			r.MemorySwap = r.Memory // without swap accounting, memory alone
		}
		if a.parent.h.v1 == nil {
			r.Unified = map[string]string{"memory.high": "max"}
			if l.MemoryHigh > 0 {
				r.Unified["memory.high"] = strconv.FormatInt(l.MemoryHigh, 10)
			}
		}
	}
	if has("cpu") {
		r.CpuPeriod, r.CpuQuota = cpuPeriod, unlimited
		if l.CPU > 0 {
			r.CpuQuota = cpuQuota(l.CPU)
		}
	}
	if has("pids") {
		r.PidsLimit = &unlimited
		if l.PidsMax > 0 {
			r.PidsLimit = &l.PidsMax
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.parent.h.v1 == nil {
		return a.v2m.Set(r)
	}
	// Each v1 controller on its own: fs.Manager.Set visits every
	// controller runc knows, and its blkio one keeps unguarded global
	// state (a data race between agents).
	for _, c := range slices.Sorted(maps.Keys(a.v1)) {
		if err := v1Subsystem(c).Set(a.v1[c], r); err != nil {
			return fmt.Errorf("cgroup %s: %w", a.v1[c], err)
		}
	}
	var joined []string
	for _, n := range l.needs() {
		if !slices.Contains(joined, n.controller) {
			joined = append(joined, n.controller)
		}
	}
	slices.Sort(joined)
	for _, c := range joined {
		if !slices.Contains(a.joined, c) {
			if err := a.migrate(c); err != nil {
				return err
			}
		}
	}
	a.joined = joined
	return nil
}

// migrate moves the processes the agent runs now into its v1 cgroup of
// controller c, which a new limit needs, until none is left outside (a
// process forked meanwhile is caught by the next pass; one forked after
// its parent moved is born inside).
func (a *Agent) migrate(c string) error {
	for range 10 {
		pids, err := cgroups.GetAllPids(a.dir)
		if err != nil {
			return err
		}
		inside, _ := cgroups.GetPids(a.v1[c])
		moved := 0
		for _, pid := range pids {
			if slices.Contains(inside, pid) {
				continue
			}
			err := cgroups.WriteCgroupProc(a.v1[c], pid)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("move process %d into cgroup %s: %w", pid, a.v1[c], err)
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return fmt.Errorf("cgroup %s: the agent forks faster than its processes can be moved in", a.v1[c])
}

// v1Subsystem is runc's reader and writer of a v1 controller an agent
// joins (one of v1Controllers).
func v1Subsystem(controller string) interface {
	Set(path string, r *cgroups.Resources) error
	GetStats(path string, stats *cgroups.Stats) error
} {
	switch controller {
	case "memory":
		return &fs.MemoryGroup{}
	case "pids":
		return &fs.PidsGroup{}
	}
	return &fs.CpuGroup{}
}

func orValue(v, unset int64) int64 {
	if v > 0 {
		return v
	}
	return unset
}

// Usage reads what the agent's processes use from its cgroup's stat files.
func (a *Agent) Usage() (Usage, error) {
	var u Usage
	// cpu.stat's usage_usec alone: fs2's CPU stats also read the
	// pressure files, which costs as much again.
	usec, err := fscommon.GetValueByKey(a.dir, "cpu.stat", "usage_usec")
	if err != nil {
		return u, err
	}
	u.CPU = time.Duration(usec) * time.Microsecond
	a.mu.Lock()
	current := a.current
	a.mu.Unlock()
	if current != nil { // an agent's processes are all in its current leaf
		pids, _ := current.Procs()
		u.Processes = len(pids)
	}
	var st *cgroups.Stats
	if a.parent.h.v1 == nil {
		st, err = a.v2m.Stats(&cgroups.StatsOptions{Controllers: cgroups.Memory | cgroups.Pids})
	} else {
		st = cgroups.NewStats()
		for _, c := range []string{"memory", "pids"} {
			if a.accounts(c) && err == nil {
				err = v1Subsystem(c).GetStats(a.v1[c], st)
			}
		}
	}
	if err != nil {
		return u, err
	}
	if a.accounts("memory") {
		u.MemoryBytes = st.MemoryStats.Usage.Usage
		u.AnonBytes = cmp.Or(st.MemoryStats.Stats["anon"], st.MemoryStats.Stats["total_rss"]) // v2, v1
		u.Accounted = append(u.Accounted, "memory")
	}
	if a.accounts("pids") {
		u.Tasks = st.PidsStats.Current
		u.Accounted = append(u.Accounted, "pids")
	}
	return u, nil
}

// accounts reports whether the agent's processes are counted by
// controller: on v1, only where a limit made them join it.
func (a *Agent) accounts(controller string) bool {
	if a.parent.h.v1 != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		return slices.Contains(a.joined, controller)
	}
	_, off := a.parent.noLimits[controller]
	return !off
}

// OOMKills is how many processes of the agent the OOM killer has killed
// so far (memory.events on v2, memory.oom_control on v1); 0 where memory
// is not accounted.
func (a *Agent) OOMKills() uint64 {
	var n uint64
	var err error
	if a.parent.h.v1 != nil {
		if !a.accounts("memory") {
			return 0
		}
		n, err = fs.OOMKillCount(a.v1["memory"])
	} else {
		n, err = fs2.OOMKillCount(a.dir)
	}
	if err != nil {
		return 0
	}
	return n
}

// NewLeaf returns the cgroup for the agent's next child: the leaf the
// last child left empty if it was never killed through cgroup.kill, else
// a fresh one. A v2 cgroup once killed that way SIGKILLs every process
// later cloned into it (seen on Linux 6.18); one whose processes all
// exited is as good as new, and reusing it saves a mkdir and an rmdir.
func (a *Agent) NewLeaf() (*Leaf, error) {
	defer a.parent.holdSlot()()
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.spare; l != nil {
		a.spare = nil
		fd, err := unix.Open(l.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == nil {
			l.fd, a.current = os.NewFile(uintptr(fd), l.dir), l
			return l, nil
		}
		unix.Rmdir(l.dir) //nolint:errcheck // make a fresh one instead
	}
	for {
		a.next++
		dir := filepath.Join(a.dir, "run-"+strconv.Itoa(a.next))
		err := unix.Mkdir(dir, 0o755)
		if errors.Is(err, unix.EEXIST) {
			continue // never reuse a leaf this instance did not make
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", dir, err)
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Rmdir(dir) //nolint:errcheck // best effort: it is empty
			return nil, fmt.Errorf("cgroup %s: %w", dir, err)
		}
		a.current = &Leaf{dir: dir, parent: a.parent, agent: a, fd: os.NewFile(uintptr(fd), dir)}
		return a.current, nil
	}
}

// Spawn calls fork so that the process it forks starts in the agent's v1
// cgroups as well (its v2 leaf is given to clone). A child takes the
// cgroups of the thread that forks it, so the forking thread joins them
// for the call and goes back afterwards; Go creates no thread from a
// locked one (runtime.newm hands that to its template thread), so no
// other thread of the host is ever in them.
func (a *Agent) Spawn(fork func() error) error {
	defer a.parent.holdSlot()()
	a.mu.Lock()
	joined := a.joined
	a.mu.Unlock()
	if len(joined) == 0 {
		return fork()
	}
	runtime.LockOSThread()
	tid := strconv.Itoa(unix.Gettid())
	own, err := cgroups.ParseCgroupFile("/proc/thread-self/cgroup")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("join cgroups: %w", err)
	}
	var in []string
	defer func() {
		for _, c := range in {
			if cgroups.WriteFile(filepath.Join(a.parent.h.v1[c].mount, own[c]), "tasks", tid) != nil {
				// Left locked, the thread ends with its goroutine
				// rather than run other goroutines in the agent's
				// cgroup.
				return
			}
		}
		runtime.UnlockOSThread()
	}()
	for _, c := range joined {
		if err := cgroups.WriteFile(a.v1[c], "tasks", tid); err != nil {
			return fmt.Errorf("join cgroup %s: %w", a.v1[c], err)
		}
		in = append(in, c)
	}
	return fork()
}

// Remove deletes the agent's cgroups; its leaves must be gone.
func (a *Agent) Remove() error {
	var errs []error
	for _, dir := range a.dirs() {
		if err := cgroups.RemovePath(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

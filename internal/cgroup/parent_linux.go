package cgroup

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// Parent is the cgroup one host instance keeps its agents under, in the
// v2 hierarchy and, on hybrid machines, in each v1 hierarchy it uses. It
// holds an exclusive lock (flock on the v2 directory) for as long as it is
// open, which the kernel releases when the host dies, so a second
// instance of the same host is refused while the first lives and can
// sweep what the first left once it is dead.
type Parent struct {
	h    *Hierarchy
	name string            // the path it was opened with
	dir  string            // v2
	v1   map[string]string // controller → directory
	lock *os.File
	// noLimits says why a v2 controller cannot be used under dir.
	noLimits map[string]string
	watch    emptyWatcher
	// slots bounds the cgroup operations under way at once. Creating,
	// joining and removing cgroups take the kernel's cgroup locks and can
	// sleep for an RCU grace period; a thousand agents starting together
	// would otherwise each hold an OS thread blocked in one.
	slots chan struct{}
}

// holdSlot waits for a slot and returns its release.
func (p *Parent) holdSlot() func() {
	p.slots <- struct{}{}
	return func() { <-p.slots }
}

// Open creates (if needed) and locks the parent at path: an absolute path
// is from the root of each hierarchy ("/edge/agents"), a relative one is
// under the host's own cgroup ("tend.edge"). An existing directory that is
// not a cgroup, or one the host cannot write, is an error naming it;
// another live instance holding it is ErrLocked.
func Open(h *Hierarchy, path string) (*Parent, error) {
	if path == "" || strings.Contains(path, "..") {
		return nil, fmt.Errorf("cgroup parent %q: must not be empty or contain \"..\"", path)
	}
	p := newParent(h, path)
	for _, dir := range p.dirs() {
		if err := makeCgroupDir(dir); err != nil {
			return nil, err
		}
	}
	lock, err := os.Open(p.dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup parent %s: %w", p.dir, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("cgroup parent %s: %w", p.dir, ErrLocked)
		}
		return nil, fmt.Errorf("cgroup parent %s: lock: %w", p.dir, err)
	}
	p.lock = lock
	if h.v1 == nil {
		p.enableControllers()
	}
	return p, nil
}

// newParent is the parent at path, its directories not made yet.
func newParent(h *Hierarchy, path string) *Parent {
	p := &Parent{h: h, name: path, v1: map[string]string{}, noLimits: map[string]string{}, slots: make(chan struct{}, 4)}
	p.dir = under(h.unified, h.self, path)
	for c, d := range h.v1 {
		p.v1[c] = under(d.mount, d.self, path)
	}
	return p
}

// under joins path to the hierarchy's root (absolute) or to the host's
// own cgroup (relative).
func under(mount, self, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Join(mount, path)
	}
	return filepath.Join(self, path)
}

// makeCgroupDir creates dir and its missing parents, refusing a directory
// that is not on a cgroup filesystem.
func makeCgroupDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC && st.Type != unix.CGROUP_SUPER_MAGIC {
		return fmt.Errorf("cgroup %s: not a cgroup directory", dir)
	}
	return nil
}

// dirs lists the parent's directories, the v2 one first.
func (p *Parent) dirs() []string { return allDirs(p.dir, p.v1) }

// allDirs lists a cgroup's directories: its v2 one first, then its v1
// ones by controller name.
func allDirs(v2 string, v1 map[string]string) []string {
	out := []string{v2}
	for _, c := range slices.Sorted(maps.Keys(v1)) {
		out = append(out, v1[c])
	}
	return out
}

// enableControllers turns on, on a v2-only machine, the limit controllers
// the host's cgroup offers, in every directory from it down to the
// parent, and records why one cannot be (a cgroup that holds processes
// cannot hand controllers down: the host must run in a leaf of its own).
func (p *Parent) enableControllers() {
	rel, err := filepath.Rel(p.h.self, p.dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		p.noLimitsAll("the parent is not under the host's own cgroup " + p.h.self)
		return
	}
	dirs := []string{p.h.self}
	for d := p.h.self; rel != "."; {
		first, rest, _ := strings.Cut(rel, string(filepath.Separator))
		d = filepath.Join(d, first)
		dirs = append(dirs, d)
		rel = cmp.Or(rest, ".")
	}
	offered := p.h.v2Controllers()
	for _, c := range v1Controllers {
		if !slices.Contains(offered, c) {
			p.noLimits[c] = fmt.Sprintf("the %s controller is not available in %s (cgroup.controllers)", c, p.h.self)
			continue
		}
		for _, d := range dirs[:len(dirs)-1] {
			if err := cgroups.WriteFile(d, "cgroup.subtree_control", "+"+c); err != nil {
				p.noLimits[c] = fmt.Sprintf("cannot enable the %s controller below %s: %v (a cgroup that holds processes, such as the host's own, cannot hand controllers down: run the host in a leaf cgroup)", c, d, err)
				break
			}
		}
	}
}

func (p *Parent) noLimitsAll(reason string) {
	for _, c := range v1Controllers {
		p.noLimits[c] = reason
	}
}

// Check reports the first limit of l this parent cannot apply, as a
// *LimitError naming its key.
func (p *Parent) Check(l Limits) error {
	if err := p.h.Check(l); err != nil {
		return err
	}
	for _, n := range l.needs() {
		if reason, ok := p.noLimits[n.controller]; ok && p.h.v1 == nil {
			return &LimitError{n.key, reason}
		}
	}
	return nil
}

// Name is the path the parent was opened with, for Resume.
func (p *Parent) Name() string { return p.name }

// Path is the parent's v2 directory.
func (p *Parent) Path() string { return p.dir }

// Leftover is an agent cgroup a previous instance left populated.
type Leftover struct {
	Agent string
	Pids  []int // the processes found in it, killed
}

// Sweep kills every process in the agent cgroups found under the parent,
// waits for them to be gone and removes the cgroups, so that nothing a
// crashed instance left runs beside the agents this one starts. The
// caller holds the lock (Open), so nothing it sweeps belongs to a live
// instance. Processes that outlive SIGKILL (uninterruptible sleep) are
// waited for, as the next child must not run beside them; stuck, if set,
// hears of them once (see Leaf.WaitEmpty).
func (p *Parent) Sweep(stuck func(pids []int)) ([]Leftover, error) {
	var found []Leftover
	var errs []error
	for _, agent := range subdirs(p.dir) {
		left := Leftover{Agent: agent}
		for _, leaf := range subdirs(filepath.Join(p.dir, agent)) {
			l := &Leaf{dir: filepath.Join(p.dir, agent, leaf), parent: p}
			pids, _ := l.Procs()
			if len(pids) == 0 {
				continue
			}
			left.Pids = append(left.Pids, pids...)
			if err := l.Kill(); err != nil {
				errs = append(errs, err)
				continue
			}
			l.WaitEmpty(stuck)
		}
		if len(left.Pids) > 0 {
			found = append(found, left)
		}
	}
	for _, dir := range p.dirs() {
		for _, agent := range subdirs(dir) {
			if err := cgroups.RemovePath(filepath.Join(dir, agent)); err != nil {
				errs = append(errs, fmt.Errorf("remove leftover cgroup: %w", err))
			}
		}
	}
	return found, errors.Join(errs...)
}

// subdirs lists the child cgroups of dir.
func subdirs(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// Close releases the lock and removes the parent's directories, which
// fails (and leaves them) while an agent cgroup remains.
func (p *Parent) Close() error {
	var errs []error
	for _, dir := range slices.Backward(p.dirs()) {
		if err := unix.Rmdir(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
		}
	}
	p.lock.Close()
	return errors.Join(errs...)
}

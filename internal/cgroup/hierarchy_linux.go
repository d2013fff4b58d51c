package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

// v1Controllers are the v1 hierarchies an agent joins on a hybrid
// machine, for its limits and accounting.
var v1Controllers = []string{"memory", "pids", "cpu"}

// Hierarchy is this machine's cgroup layout as the host sees it.
type Hierarchy struct {
	unified string           // the v2 mount point
	self    string           // the host's own v2 cgroup directory
	v1      map[string]v1Dir // controller → its v1 hierarchy, on hybrid machines
}

// v1Dir is a v1 hierarchy: its mount point and the host's cgroup in it.
type v1Dir struct{ mount, self string }

// Detect reads the cgroup layout once and checks that the host may create
// cgroups under its own. The error wraps ErrUnavailable and says why not:
// no v2 hierarchy, a read-only mount, not writable by this user.
func Detect() (*Hierarchy, error) {
	if err := kernelSupports(); err != nil {
		return nil, err
	}
	// Asked first here, so that the library's own check (which logs a
	// warning to the host's stderr when it fails) never fails.
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("%w: /sys/fs/cgroup: %w", ErrUnavailable, err)
	}
	var h Hierarchy
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		h.unified = "/sys/fs/cgroup"
	case cgroups.IsCgroup2HybridMode():
		h.unified = "/sys/fs/cgroup/unified"
	default:
		return nil, fmt.Errorf("%w: no cgroup2 hierarchy is mounted (a v1-only machine)", ErrUnavailable)
	}
	own, err := cgroups.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	h.self = filepath.Join(h.unified, own[""])
	if err := writable(h.self); err != nil {
		return nil, err
	}
	if h.unified != "/sys/fs/cgroup" {
		h.v1 = map[string]v1Dir{}
		for _, c := range v1Controllers {
			mount, err := cgroups.FindCgroupMountpoint("", c)
			if err != nil {
				continue // not mounted: limits that need it are refused
			}
			self := filepath.Join(mount, own[c])
			if writable(self) == nil {
				h.v1[c] = v1Dir{mount: mount, self: self}
			}
		}
	}
	return &h, nil
}

// kernelSupports checks for clone3's CLONE_INTO_CGROUP (Linux 5.7), which
// places a child in its cgroup before it runs.
func kernelSupports() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("%w: uname: %w", ErrUnavailable, err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil || major < 5 || major == 5 && minor < 7 {
		return fmt.Errorf("%w: Linux %s cannot clone a child into a cgroup (clone3 CLONE_INTO_CGROUP needs 5.7)", ErrUnavailable, release)
	}
	return nil
}

// writable says why the host cannot create cgroups in dir, if it cannot.
func writable(dir string) error {
	err := unix.Access(dir, unix.W_OK)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("%w: %s is on a read-only mount", ErrUnavailable, dir)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %s is not writable by uid %d (not root, and not delegated to it)", ErrUnavailable, dir, os.Geteuid())
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, dir, err)
}

// Describe says in one line how agents are contained here.
func (h *Hierarchy) Describe() string {
	if h.v1 == nil {
		return "cgroup v2 at " + h.unified
	}
	names := make([]string, 0, len(h.v1))
	for c := range h.v1 {
		names = append(names, c)
	}
	slices.Sort(names)
	return fmt.Sprintf("cgroup v2 at %s for tracking, v1 %s for limits", h.unified, strings.Join(names, ", "))
}

// Check reports the first limit of l this layout cannot apply, as a
// *LimitError naming its key.
func (h *Hierarchy) Check(l Limits) error {
	for _, n := range l.needs() {
		if h.v1 != nil {
			if _, ok := h.v1[n.controller]; !ok {
				return &LimitError{n.key, fmt.Sprintf("the %s controller is not mounted as a v1 hierarchy the host can write, and the v2 hierarchy at %s has no controllers on this hybrid machine", n.controller, h.unified)}
			}
			if n.key == "memory_high" {
				return &LimitError{n.key, "needs the v2 memory controller; on this hybrid machine memory is a v1 controller, which has no memory.high"}
			}
			continue
		}
		if !slices.Contains(h.v2Controllers(), n.controller) {
			return &LimitError{n.key, fmt.Sprintf("the %s controller is not available in %s (cgroup.controllers)", n.controller, h.self)}
		}
	}
	return nil
}

// v2Controllers lists the controllers the host's v2 cgroup can hand down.
func (h *Hierarchy) v2Controllers() []string {
	b, err := os.ReadFile(filepath.Join(h.self, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

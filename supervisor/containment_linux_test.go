package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/internal/cgroup"
)

// requireCgroups skips a test where this host cannot create cgroups.
func requireCgroups(t *testing.T) {
	t.Helper()
	if processGroupsOnly {
		t.Skip("containment is forced off (TEND_TEST_PROCESS_GROUPS)")
	}
	if _, err := cgroup.Detect(); err != nil {
		t.Skipf("needs cgroups (run as root on Linux with cgroup v2 mounted): %v", err)
	}
}

// escaperSpec is an agent whose shell puts one descendant in a session of
// its own and double-forks another, writing their PIDs to pidFile, then
// runs main (exec'd, so the leader is the main process).
func escaperSpec(t *testing.T, pidFile, main string) Spec {
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = []string{"-c", `setsid sleep 1000 & echo $! >> "$0"; (sleep 1000 & echo $! >> "$0"); ` + main, pidFile}
	spec.Restart.Policy = RestartNever
	return spec
}

// The bug: a descendant that leaves the process group (setsid, a double
// fork) outlived Stop and its main process, unsupervised. In a cgroup it
// cannot leave: Stop kills it, and so does the end of the main process,
// which the Exit reports.
func TestContainedDescendantsDieWithTheAgent(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	for _, tc := range []struct {
		name string
		main string
		// left is how many descendants the main process may leave: Stop's
		// SIGTERM reaches the double-forked one, still in the group, so
		// it may be gone already.
		left int
		end  func(p *Process) Exit
	}{
		{"stop", "exec sleep 1000", 1, func(p *Process) Exit {
			if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			return *p.Status().LastExit
		}},
		{"main exits", "sleep 0.3; exit 3", 2, func(p *Process) Exit {
			st, err := p.Wait(ctxTimeout(t, 10*time.Second))
			if err != nil || st.State != Exited {
				t.Fatalf("agent did not end: %v, %+v", err, st)
			}
			return *st.LastExit
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := tempFile(t, "pids")
			spec := escaperSpec(t, pidFile, tc.main)
			p, err := g.Add(spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if b := p.Status().Boundary; !strings.HasPrefix(b, "cgroup /") {
				t.Fatalf("boundary %q, want a cgroup", b)
			}
			escaped := readPIDs(t, pidFile, 2)
			for _, pid := range escaped {
				if !alive(pid) {
					t.Fatalf("descendant %d not running", pid)
				}
			}
			exit := tc.end(p)
			for _, pid := range escaped {
				if alive(pid) {
					t.Errorf("descendant %d outlived its agent (%s)", pid, tc.name)
				}
			}
			if exit.Leftovers < tc.left || exit.Leftovers > 2 || !strings.Contains(exit.String(), "leftover processes killed") {
				t.Errorf("exit %q (leftovers %d), want %d-2 leftovers reported", exit.String(), exit.Leftovers, tc.left)
			}
			if err := g.Remove(ctxTimeout(t, 10*time.Second), spec.Name); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A daemonizing agent (its main process forks the daemon and exits) is
// never reported as running with nothing of it watched: what it left is
// killed, and the Exit says so.
func TestDaemonizingAgentIsNotLeftRunning(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	pidFile := tempFile(t, "pid")
	spec := agentSpec(t)
	spec.Path, spec.Args = "/bin/sh", []string{"-c", `sleep 1000 & echo $! > "$0"`, pidFile}
	spec.Restart.Policy = RestartNever
	spec.StartSeconds = 0
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctxTimeout(t, 10*time.Second)) //nolint:errcheck // it exits 0 during Starting: that is the point
	st, err := p.Wait(ctxTimeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	daemon := readPIDs(t, pidFile, 1)[0]
	if alive(daemon) || st.LastExit == nil || st.LastExit.Leftovers != 1 {
		t.Fatalf("daemon %d alive %v after its launcher exited; exit %+v", daemon, alive(daemon), st.LastExit)
	}
}

// memory_max: the kernel's OOM killer ends an agent that allocates more,
// and the Exit and the event say that it was the OOM killer.
func TestMemoryMaxOOMKill(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t, "-alloc-mb", "200")
	spec.Resources.MemoryMax = 32 << 20
	spec.Restart.Policy = RestartNever
	spec.StartSeconds = config.Duration(5 * time.Second)
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	reasons := make(chan Reason, 10)
	defer p.Subscribe(func(e Event) { reasons <- e.Reason })()
	p.Start(ctxTimeout(t, 10*time.Second)) //nolint:errcheck // it dies while Starting
	st, err := p.Wait(ctxTimeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e := st.LastExit
	if e == nil || !e.OOMKilled || e.Signal != Signal(syscall.SIGKILL) || !strings.Contains(e.String(), "OOM killer") {
		t.Fatalf("exit %+v, want OOM-killed", e)
	}
	for r := range reasons {
		if r == ReasonOOMKilled {
			break
		}
	}
}

// An OOM kill at memory_max is a restart of its own cause.
func TestRestartAfterOOMKillCounted(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t, "-alloc-mb", "200")
	spec.Resources.MemoryMax = 32 << 20
	spec.StartSeconds = config.Duration(5 * time.Second)
	spec.Restart.MaxRestarts = 1
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctxTimeout(t, 20*time.Second)) //nolint:errcheck // it dies while Starting, twice
	st := p.Status()
	for deadline := time.Now().Add(20 * time.Second); st.State != Failed && time.Now().Before(deadline); st = p.Status() {
		time.Sleep(10 * time.Millisecond)
	}
	if st.State != Failed || st.RestartsBy != (RestartCounts{OOM: 1}) || st.Restarts != 1 {
		t.Fatalf("state %s, Restarts %d, RestartsBy %+v; want Failed after one OOM restart", st.State, st.Restarts, st.RestartsBy)
	}
}

// pids_max: a fork bomb stays inside its cgroup, and the host can still
// start processes.
func TestPidsMaxContainsForkBomb(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t)
	// bash, unlike dash, survives a failed fork and goes on trying.
	spec.Path, spec.Args = "/bin/bash", []string{"-c", "while :; do sleep 1000 & done 2>/dev/null"}
	spec.Resources.PidsMax = 16
	spec.Restart.Policy = RestartNever
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var u TreeUsage
	for u.Tasks < 16 {
		if u, err = p.TreeUsage(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // the bomb forks as fast as the kernel lets it
	}
	time.Sleep(200 * time.Millisecond)
	if u, _ = p.TreeUsage(); u.Tasks > 16 {
		t.Fatalf("%d tasks in the agent, pids_max 16", u.Tasks)
	}
	if out, err := exec.Command("/bin/true").CombinedOutput(); err != nil {
		t.Fatalf("the host cannot fork beside the bomb: %v %s", err, out)
	}
	bomb := leafPIDs(p.Status().Boundary)
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, pid := range bomb {
		if alive(pid) {
			t.Errorf("process %d of the bomb survived Stop", pid)
		}
	}
}

// cpu: a spinning agent limited to 0.2 cores gets no more than about that.
// Only the upper bound is checked: the kernel's CFS quota decides it,
// and a slow or busy machine gives less, never more.
func TestCPULimitThrottlesSpinner(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t, "-spin")
	spec.Resources.CPU = 0.2
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	probe := health.NewTreeResources(func() (health.TreeUsage, error) {
		u, err := p.TreeUsage()
		return health.TreeUsage{CPU: u.CPU, RSSBytes: u.RSSBytes, Processes: u.Processes}, err
	}, health.Limits{})
	if _, err := probe.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, err := p.TreeUsage()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(time.Second) // CPU over wall time: the kernel decides
	after, _ := p.TreeUsage()
	sample, err := probe.Sample(context.Background())
	share := float64(after.CPU-before.CPU) / float64(time.Since(start))
	t.Logf("a spinner limited to 0.2 cores used %.3f cores; the tree probe saw %.1f%%", share, sample.CPUPercent)
	if share > 0.3 || share <= 0 {
		t.Fatalf("spinner used %.3f cores with cpu 0.2", share)
	}
	if err != nil || sample.CPUPercent > 30 || sample.CPUPercent <= 0 || sample.Processes < 1 {
		t.Fatalf("tree probe: %+v, %v", sample, err)
	}
}

// Limits are checked at Add and Apply, naming the key; Apply changes
// them in place, without a restart.
func TestResourcesValidatedAndAppliedInPlace(t *testing.T) {
	requireCgroups(t)
	if _, err := New(Spec{Name: "x", Path: "/bin/true", Resources: Resources{PidsMax: 5}}); err == nil || !strings.Contains(err.Error(), "resources") {
		t.Fatalf("New with limits: %v, want an error naming resources", err)
	}
	off := newGroup(t, GroupOptions{Containment: Containment{Disabled: true}})
	if _, err := off.Add(Spec{Name: "x", Path: "/bin/true", Resources: Resources{PidsMax: 5}}); err == nil || !strings.Contains(err.Error(), "limits need cgroups") {
		t.Fatalf("limits without cgroups: %v", err)
	}
	g := newGroup(t, GroupOptions{})
	for _, bad := range []struct {
		r   Resources
		key string
	}{
		{Resources{CPU: 0.001}, "resources.cpu"},
		{Resources{PidsMax: -1}, "resources.pids_max"},
		{Resources{MemoryMax: 1 << 20, MemoryHigh: 2 << 20}, "resources.memory_high"},
	} {
		if _, err := g.Add(Spec{Name: "bad", Path: "/bin/true", Resources: bad.r}); err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%+v: %v, want an error naming %s", bad.r, err, bad.key)
		}
	}
	spec := agentSpec(t)
	spec.Resources = Resources{MemoryMax: 64 << 20, PidsMax: 50}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec}); err != nil {
		t.Fatal(err)
	}
	p, _ := g.Get(spec.Name)
	pid := p.Status().PID
	if got := v1Limit(t, pid, "pids", "pids.max"); got != "50" {
		t.Fatalf("pids.max %q, want 50", got)
	}
	spec.Resources = Resources{MemoryMax: 128 << 20}
	res, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec})
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.PID != pid || len(res.Updated) != 1 || st.Limits.MemoryMax != 128<<20 {
		t.Fatalf("Apply %+v: pid %d -> %d, limits %+v", res, pid, st.PID, st.Limits)
	}
	if got := v1Limit(t, pid, "pids", "pids.max"); got != "max" {
		t.Errorf("pids.max %q after the limit was dropped, want max", got)
	}
	if got := v1Limit(t, pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(128<<20) {
		t.Errorf("memory.limit_in_bytes %q, want %d", got, 128<<20)
	}
}

// v1Limit reads a limit file of pid's cgroup in the v1 hierarchy of
// controller, skipping where that hierarchy is not v1.
func v1Limit(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	v, err := os.ReadFile(filepath.Join(v1CgroupDir(t, strconv.Itoa(pid), controller), file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

// v1CgroupDir is the cgroup directory of process proc ("self" or a PID)
// in the v1 hierarchy of controller, skipping where there is none.
func v1CgroupDir(t *testing.T, proc, controller string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + proc + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && f[1] == controller {
			return filepath.Join("/sys/fs/cgroup", controller, f[2])
		}
	}
	t.Skipf("no v1 %s hierarchy here", controller)
	return ""
}

// leafPIDs lists the processes in the cgroup leaf that Status.Boundary
// names.
func leafPIDs(boundary string) []int {
	b, _ := os.ReadFile(filepath.Join(strings.TrimPrefix(boundary, "cgroup "), "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	return pids
}

// Each agent's cgroup goes with it, and the parent with the Group.
func TestCgroupsRemovedWithAgentAndGroup(t *testing.T) {
	requireCgroups(t)
	g, err := NewGroup(GroupOptions{Containment: Containment{Name: "test-removal-" + strconv.Itoa(os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	parent := g.contain.parent.Path()
	spec := agentSpec(t)
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	agentDir := filepath.Join(parent, spec.Name)
	if _, err := os.Stat(agentDir); err != nil {
		t.Fatal(err)
	}
	if _, err := NewGroup(GroupOptions{Containment: Containment{Name: "test-removal-" + strconv.Itoa(os.Getpid())}}); !errors.Is(err, ErrInstanceRunning) {
		t.Fatalf("a second live instance of the same name: %v, want ErrInstanceRunning", err)
	}
	if err := g.Remove(ctxTimeout(t, 10*time.Second), spec.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(agentDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("agent cgroup after Remove: %v", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parent); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("parent cgroup after Close: %v", err)
	}
}

// The notify socket asks the boundary who may speak: in a cgroup, a
// descendant that left the process group (setsid) is still the agent's.
func TestNotifyFromSetsidDescendantInCgroup(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = []string{"-c", `setsid "$0" -notify-ready-after 0 & exec sleep 1000`, agentPath}
	spec.NotifyReady = true
	spec.StartTimeout = config.Duration(5 * time.Second)
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("READY=1 from a setsid'd descendant in the agent's cgroup was not taken: %v", err)
	}
}

// A limit added by Apply reaches the running child and its descendants
// in place, even where the agent had not joined that controller before.
func TestLimitAddedInPlaceReachesRunningTree(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	grand := tempFile(t, "grand")
	spec := agentSpec(t, "-fork", "2", "-grandpids", grand)
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec}); err != nil {
		t.Fatal(err)
	}
	p, _ := g.Get(spec.Name)
	pids := append([]int{p.Status().PID}, readPIDs(t, grand, 2)...)
	spec.Resources.PidsMax = 40
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec}); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if got := v1Limit(t, pid, "pids", "pids.max"); got != "40" {
			t.Errorf("process %d: pids.max %q after Apply, want 40", pid, got)
		}
	}
	if st := p.Status(); st.PID != pids[0] {
		t.Fatalf("Apply restarted the agent: pid %d -> %d", pids[0], st.PID)
	}
}

// Limits changed by Apply while the agent crash-loops (each restart makes
// or reuses a leaf and joins the v1 hierarchies its limits need) end with
// the last limits applied and every child contained.
func TestLimitsChangedWhileRestarting(t *testing.T) {
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t, "-after", "5ms", "-exit", "1")
	spec.Restart.MaxRestarts = -1
	spec.StartSeconds = config.Duration(time.Millisecond)
	var last Resources
	for i := range 40 {
		last = Resources{PidsMax: int64(50 + i%7)}
		if i%3 == 0 {
			last.MemoryMax = config.Bytes(64+i) << 20
		}
		spec.Resources = last
		if _, err := g.Launch(ctxTimeout(t, 10*time.Second), []Spec{spec}); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := g.Get(spec.Name)
	parent, _ := g.CgroupParent()
	file := filepath.Join(v1CgroupDir(t, "self", "pids"), filepath.Base(parent), spec.Name, "pids.max")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st := p.Status()
		b, _ := os.ReadFile(file)
		if st.Limits == last && strings.TrimSpace(string(b)) == strconv.FormatInt(last.PidsMax, 10) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("limits %+v, %s %q after the last Apply of %+v", st.Limits, file, b, last)
		}
	}
}

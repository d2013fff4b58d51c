package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// openParent detects the layout and opens a parent unique to the test,
// skipping where the host cannot create cgroups.
func openParent(t *testing.T) (*Hierarchy, *Parent) {
	t.Helper()
	h, err := Detect()
	if err != nil {
		t.Skipf("cgroups: %v", err)
	}
	name := fmt.Sprintf("tend-test.%d.%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	p, err := Open(h, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Sweep(nil); p.Close() }) //nolint:errcheck // best effort
	return h, p
}

// startInLeaf starts sh -c script cloned into leaf, as the supervisor does.
func startInLeaf(t *testing.T, a *Agent, leaf *Leaf, script string) int {
	t.Helper()
	var pid int
	err := a.Spawn(func() error {
		var err error
		pid, _, err = syscall.StartProcess("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{
			Files: []uintptr{0, 1, 2},
			Sys:   &syscall.SysProcAttr{Setpgid: true, UseCgroupFD: true, CgroupFD: leaf.FD()},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	leaf.Spawned()
	return pid
}

// waitProcs waits until the leaf lists n processes.
func waitProcs(t *testing.T, leaf *Leaf, n int) []int {
	t.Helper()
	for range 500 {
		if pids, _ := leaf.Procs(); len(pids) == n {
			return pids
		}
		time.Sleep(10 * time.Millisecond) // the kernel decides when sh has forked
	}
	pids, _ := leaf.Procs()
	t.Fatalf("leaf holds %v, want %d processes", pids, n)
	return nil
}

func TestLeafHoldsEscapedDescendantsAndKillsThemAtOnce(t *testing.T) {
	_, p := openParent(t)
	a, err := p.Agent("escaper")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := a.NewLeaf()
	if err != nil {
		t.Fatal(err)
	}
	// One descendant in a session of its own, one double-forked.
	pid := startInLeaf(t, a, leaf, "setsid sleep 1000 & (sleep 1000 &) ; exec sleep 1000")
	pids := waitProcs(t, leaf, 3)
	if !slices.Contains(pids, pid) || !leaf.Contains(pid) {
		t.Fatalf("leader %d not in leaf %v", pid, pids)
	}
	if err := leaf.Kill(); err != nil {
		t.Fatal(err)
	}
	leaf.WaitEmpty(nil)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil) //nolint:errcheck
	for _, q := range pids {
		if err := syscall.Kill(q, 0); err == nil && q != pid && isLive(q) {
			t.Errorf("process %d survived the leaf's kill", q)
		}
	}
	if err := leaf.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
}

func isLive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestSecondInstanceIsRefusedAndSweepsOnceTheFirstIsGone(t *testing.T) {
	h, p := openParent(t)
	if _, err := Open(h, p.dir[len(h.self)+1:]); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	a, err := p.Agent("left")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := a.NewLeaf()
	if err != nil {
		t.Fatal(err)
	}
	pid := startInLeaf(t, a, leaf, "setsid sleep 1000 & exec sleep 1000")
	waitProcs(t, leaf, 2)
	defer syscall.Wait4(pid, nil, 0, nil) //nolint:errcheck
	p.lock.Close()                        // as the kernel does when the host dies

	again, err := Open(h, p.dir[len(h.self)+1:])
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, err := again.Agent("left"); err == nil {
		t.Fatal("an agent cgroup holding another owner's processes was reused")
	}
	found, err := again.Sweep(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0].Agent != "left" || len(found[0].Pids) != 2 {
		t.Fatalf("sweep found %+v, want agent left with 2 processes", found)
	}
	if _, err := os.Stat(filepath.Join(again.dir, "left")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover cgroup not removed: %v", err)
	}
}

// A leaf whose processes all exited serves the agent's next child; one
// killed through cgroup.kill never does, because the kernel may SIGKILL
// whatever is cloned into it afterwards.
func TestLeafReusedOnlyIfNeverKilled(t *testing.T) {
	_, p := openParent(t)
	a, err := p.Agent("reuse")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Remove()
	run := func(script string, kill bool) string {
		leaf, err := a.NewLeaf()
		if err != nil {
			t.Fatal(err)
		}
		pid := startInLeaf(t, a, leaf, script)
		if kill {
			waitProcs(t, leaf, 1)
			if err := leaf.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil) //nolint:errcheck
		if kill != ws.Signaled() {
			t.Fatalf("%q in %s: %v, killed %v", script, leaf.Path(), ws, kill)
		}
		leaf.WaitEmpty(nil)
		if err := leaf.Release(); err != nil {
			t.Fatal(err)
		}
		return leaf.Path()
	}
	first := run("exit 0", false)
	if second := run("exec sleep 1000", true); second != first {
		t.Fatalf("a clean exit's leaf %s was not reused (got %s)", first, second)
	}
	third := run("exit 0", false)
	if third == first {
		t.Fatalf("leaf %s reused after cgroup.kill", first)
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("killed leaf %s not removed: %v", first, err)
	}
	// The kernel behaviour that rules reuse out, where it shows.
	dir := filepath.Join(a.dir, "trap")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	trap := &Leaf{dir: dir, parent: p}
	trap.Kill() //nolint:errcheck // empty: kills nothing
	trap.fd, _ = os.Open(dir)
	pid := startInLeaf(t, a, trap, "exit 0")
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil) //nolint:errcheck
	t.Logf("a child cloned into a cgroup after cgroup.kill: %v", ws)
	trap.Remove() //nolint:errcheck
}

// Why the host cannot create cgroups is said in words a host can log.
func TestUnwritableReasons(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a read-only tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	defer syscall.Unmount(dir, 0) //nolint:errcheck
	err := writable(dir)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "read-only mount") {
		t.Fatalf("read-only mount: %v", err)
	}
	if _, err := Open(&Hierarchy{unified: dir, self: dir}, "/x"); err == nil {
		t.Fatal("a parent on a read-only mount was opened")
	}
	plain := t.TempDir()
	if _, err := Open(&Hierarchy{unified: plain, self: plain}, "x"); err == nil || !strings.Contains(err.Error(), "not a cgroup directory") {
		t.Fatalf("a parent outside cgroupfs: %v, want it named as not a cgroup directory", err)
	}
}

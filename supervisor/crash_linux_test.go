package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/tend-dev/tend/config"
)

// containedHostEnv makes the test binary act as a host that runs a Group
// with cgroups, named by the variable, until it is killed.
const containedHostEnv = "TEND_TEST_CONTAINED_HOST"

// crashSpecs are the agents of the crashing host: an HTTP server on addr
// and a shell whose descendant leaves its session, writing its PID to dir.
// The shell stays the main process: one that execs its agent later than
// the record is written is recorded with the shell's binary, and a host
// without cgroups rightly leaves a process it cannot verify alone.
func crashSpecs(agent, addr, dir string) []Spec {
	server := Spec{Name: "server", Path: agent, Args: []string{"-sd-serve", "-sd-own-port", addr},
		Ready: func(context.Context) error { _, err := get("http://" + addr); return err }}
	escaper := Spec{Name: "escaper", Path: "/bin/sh",
		Args: []string{"-c", `setsid sleep 1000 & echo $! > "$0"; sleep 1000; exit 0`, filepath.Join(dir, "escaped")}}
	for _, s := range []*Spec{&server, &escaper} {
		s.StartSeconds = config.Duration(50 * time.Millisecond)
	}
	return []Spec{server, escaper}
}

func init() { testHosts[containedHostEnv] = runContainedHost }

// runContainedHost is the host the crash test kills: it writes its agents'
// PIDs to $dir/pids once they run, then waits to be killed.
func runContainedHost(name string) {
	dir, addr := os.Getenv("TEND_TEST_DIR"), os.Getenv("TEND_TEST_ADDR")
	opts := GroupOptions{Containment: Containment{Name: name, Disabled: os.Getenv("TEND_TEST_NO_CGROUPS") != ""}}
	var err error
	if path := os.Getenv("TEND_TEST_STORE"); path != "" {
		opts.Store, err = NewFileStore(path)
	}
	var g *Group
	if err == nil {
		g, err = NewGroup(opts)
	}
	if err == nil {
		_, err = g.Apply(context.Background(), crashSpecs(os.Getenv("TEND_TEST_AGENT"), addr, dir))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "contained host:", err)
		os.Exit(3)
	}
	// A Store is written from the events, after Apply returns: the test
	// may kill this host once the records of running agents are on disk.
	for opts.Store != nil && !recordedRunning(opts.Store, len(g.List())) {
		time.Sleep(5 * time.Millisecond)
	}
	var pids []string
	for _, st := range g.List() {
		pids = append(pids, strconv.Itoa(st.PID))
	}
	if err := os.WriteFile(filepath.Join(dir, "pids"), []byte(strings.Join(pids, "\n")+"\n"), 0o600); err != nil {
		os.Exit(4)
	}
	select {} // until the test kills this process
}

// recordedRunning reports whether store holds n records of running
// agents, each with the binary it runs.
func recordedRunning(store Store, n int) bool {
	records, _ := store.Load()
	running := 0
	for _, r := range records {
		if r.State == Running && r.Exe != "" {
			running++
		}
	}
	return running == n
}

// The bug: a host that died left its agents running, holding their ports,
// and the next host's probes were answered by those leftovers. A Group
// now kills what a crashed instance of the same name left before it
// starts anything, so the port is free and the probe answered by its own
// agent.
func TestNextHostKillsWhatACrashedOneLeft(t *testing.T) {
	requireCgroups(t)
	name := "crash-test-" + strconv.Itoa(os.Getpid())
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	left := crashHost(t, dir, addr, containedHostEnv+"="+name)
	left = append(left, readPIDs(t, filepath.Join(dir, "escaped"), 1)...)
	g := newGroup(t, GroupOptions{Containment: Containment{Name: name}})
	assertSweptAndServed(t, g, left, dir, addr)
}

// crashHost runs the helper host with env, waits for its agents, SIGKILLs
// it and returns the PIDs of its agents, which it checks are still
// running and serving.
func crashHost(t *testing.T, dir, addr string, env ...string) []int {
	t.Helper()
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(append(os.Environ(), "TEND_TEST_DIR="+dir,
		"TEND_TEST_ADDR="+addr, "TEND_TEST_AGENT="+agentPath), env...)
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	left := readPIDs(t, filepath.Join(dir, "pids"), 2)
	host.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it is ours
	host.Wait()                          //nolint:errcheck // killed on purpose
	for _, pid := range left {
		if !alive(pid) {
			t.Fatalf("agent process %d died with the host: nothing left to test", pid)
		}
	}
	if body, err := get("http://" + addr); err != nil || !strings.HasPrefix(body, "pid ") {
		t.Fatalf("the crashed host's server does not answer: %q %v", body, err)
	}
	return left
}

// assertSweptAndServed checks that the new host g killed left before it
// returned, and that its own server then answers the probe.
func assertSweptAndServed(t *testing.T, g *Group, left []int, dir, addr string) {
	t.Helper()
	for _, pid := range left {
		if alive(pid) {
			t.Errorf("leftover %d still running after the next host started", pid)
		}
	}
	if body, err := get("http://" + addr); err == nil {
		t.Fatalf("the port is still answered by a leftover: %q", body)
	}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), crashSpecs(agentPath, addr, dir)); err != nil {
		t.Fatal(err)
	}
	p, _ := g.Get("server")
	if body, err := get("http://" + addr); err != nil || strings.TrimSpace(body) != "pid "+strconv.Itoa(p.Status().PID) {
		t.Fatalf("probe answered %q (%v), want the new server, pid %d", body, err, p.Status().PID)
	}
}

// Without cgroups, the next host kills the process groups the crashed
// one's FileStore recorded, after checking each is still that process.
func TestNextHostKillsRecordedProcessGroups(t *testing.T) {
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	store := filepath.Join(dir, "state.json")
	left := crashHost(t, dir, addr, containedHostEnv+"=pg-crash", "TEND_TEST_NO_CGROUPS=1", "TEND_TEST_STORE="+store)
	escaped := readPIDs(t, filepath.Join(dir, "escaped"), 1)[0]
	t.Cleanup(func() { syscall.Kill(escaped, syscall.SIGKILL) }) //nolint:errcheck // out of a process group's reach
	fs, err := NewFileStore(store)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, GroupOptions{Store: fs, Containment: Containment{Disabled: true}})
	assertSweptAndServed(t, g, left, dir, addr)
	// The new escaper's descendant leaves its group too: out of a
	// process group's reach, it is the test's to kill.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if again := readPIDs(t, filepath.Join(dir, "escaped"), 1)[0]; again != escaped {
			syscall.Kill(again, syscall.SIGKILL) //nolint:errcheck // ours
			return
		}
		time.Sleep(5 * time.Millisecond) // until the new escaper has written it
	}
	t.Fatal("the new escaper never wrote its descendant's PID")
}

// A record whose PID now names another process (another start time or
// binary) is never acted on.
func TestRecordedProcessGroupVerifiedBeforeKill(t *testing.T) {
	bystander := exec.Command("sleep", "1000")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	defer bystander.Wait()         //nolint:errcheck // killed below
	defer bystander.Process.Kill() //nolint:errcheck // ours
	pid := bystander.Process.Pid
	sleep := executable(pid, startTicks(pid))
	for _, r := range []Record{
		{Name: "wrong-start", State: Running, PID: pid, LeaderStart: startTicks(pid) + 1, Exe: sleep},
		{Name: "wrong-binary", State: Running, PID: pid, LeaderStart: startTicks(pid), Exe: "/bin/true"},
		{Name: "stopped", State: Stopped, PID: pid, LeaderStart: startTicks(pid), Exe: sleep},
	} {
		sweepProcessGroups(map[string]Record{r.Name: r}, testr.New(t))
		if !alive(pid) {
			t.Fatalf("record %+v killed a process that is not the recorded one", r)
		}
	}
	sweepProcessGroups(map[string]Record{"it": {Name: "it", State: Running, PID: pid, LeaderStart: startTicks(pid), Exe: sleep}}, testr.New(t))
	if alive(pid) {
		t.Fatal("the recorded process itself was not killed")
	}
}

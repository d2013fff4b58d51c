package supervisor

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

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/logs"
)

// A path that is missing or not executable fails the hand-over before
// anything is paused.
func TestHandoverRefusesAMissingBinary(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	p, err := g.Add(agentSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/nonexistent/tend-host", notExec} {
		err := g.Handover(ctxTimeout(t, 5*time.Second), Exec{Path: path})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("Handover to %s: %v, want an error naming it", path, err)
		}
	}
	if st := p.Status(); st.State != Running || st.Run != 1 {
		t.Fatalf("after the refused hand-overs: %s run %d", st.State, st.Run)
	}
}

// An exec that fails after every agent was paused (a file that is
// executable but no program) leaves supervision as it was: the same
// children, their output whole and in order through the partial line a
// logs.Stream gave up, and an agent that died in the window reported
// once, afterwards.
func TestHandoverExecFailureResumesHere(t *testing.T) {
	dir := t.TempDir()
	g := newGroup(t, GroupOptions{})
	rot, err := logs.New(logs.Options{Path: filepath.Join(dir, "print.log"), PartialLineWait: config.Duration(30 * time.Second)}) // see handoverSpecs
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	fast := config.Duration(20 * time.Millisecond)
	seqDir := filepath.Join(dir, "seq")
	os.Mkdir(seqDir, 0o755) //nolint:errcheck // checked by the agent
	specs := []Spec{
		{Name: "print", Path: agentPath, Args: []string{"-seq-dir", seqDir, "-every", "1ms", "-seq-split"}, Stdout: rot.Stream("stdout"), StartSeconds: fast},
		{Name: "notify", Path: agentPath, Args: []string{"-notify-ready-after", "5ms", "-watchdog-every", "20ms"}, NotifyReady: true, Watchdog: config.Duration(time.Second)},
		{Name: "victim", Path: agentPath, StartSeconds: fast},
		{Name: "backoff", Path: agentPath, Args: []string{"-after", "1ms", "-exit", "3"}, StartSeconds: fast, Restart: RestartSpec{FirstDelay: config.Duration(time.Hour)}},
	}
	events := make(chan Event, 100)
	defer g.Subscribe(func(e Event) { events <- e })()
	if _, err := g.Launch(ctxTimeout(t, 5*time.Second), specs); err != nil {
		t.Fatal(err)
	}
	waitStates(t, g, map[string]State{"print": Running, "notify": Running, "victim": Running, "backoff": Backoff})
	before := map[string]Status{}
	for _, st := range g.List() {
		before[st.Name] = st
	}
	victim := before["victim"].PID
	beforeExec = func() { killInWindow(g, "victim") }
	defer func() { beforeExec = nil }()
	notProgram := filepath.Join(dir, "not-a-program")
	if err := os.WriteFile(notProgram, []byte("\x7fELF garbage"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = g.Handover(ctxTimeout(t, 5*time.Second), Exec{Path: notProgram})
	if !errors.Is(err, syscall.ENOEXEC) {
		t.Fatalf("Handover: %v, want ENOEXEC", err)
	}
	// The victim died while supervision was paused: its exit is reported
	// now, once, with its status, and it is restarted.
	var exits []Event
	for e := range events {
		if e.Name == "victim" && e.Reason == ReasonExited {
			exits = append(exits, e)
		}
		if e.Name == "victim" && e.To == Running && e.Status.Run == before["victim"].Run+1 {
			break
		}
	}
	if len(exits) != 1 || exits[0].Status.LastExit.Code != 0 || exits[0].Status.LastExit.Signal != 0 {
		t.Fatalf("victim's exits after the failed exec: %v, want one, code 0 (its answer to SIGTERM)", exits)
	}
	if alive(victim) {
		t.Fatalf("victim %d alive", victim)
	}
	time.Sleep(100 * time.Millisecond) // output flows on
	for _, st := range g.List() {
		was := before[st.Name]
		if st.Name == "victim" {
			if st.Run != was.Run+1 {
				t.Fatalf("victim: run %d, want %d (restarted once)", st.Run, was.Run+1)
			}
			continue
		}
		if st.PID != was.PID || st.State != was.State || st.Run != was.Run || !st.NextRestartAt.Equal(was.NextRestartAt) {
			t.Fatalf("%s after the failed exec: %s PID %d run %d next %v; before: %s PID %d run %d next %v",
				st.Name, st.State, st.PID, st.Run, st.NextRestartAt, was.State, was.PID, was.Run, was.NextRestartAt)
		}
	}
	// Exit detection works again: a kill is seen and restarted.
	syscall.Kill(before["notify"].PID, syscall.SIGKILL) //nolint:errcheck // checked below
	for e := range events {
		if e.Name == "notify" && e.From == Running {
			break
		}
	}
	if err := g.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	rot.Close()
	checkSequenceFile(t, filepath.Join(dir, "print.log"), seqDir)
}

// A state of a version this binary does not know is not trusted at all:
// the new binary kills and reaps the agents it was handed, starts them
// afresh, and still gets the host's own files.
func TestHandoverFromAnUnknownVersionStartsAfresh(t *testing.T) {
	dir := t.TempDir()
	cmd := handoverHost(t, dir, hoAgents+"=small", hoVersion+"=99")
	first := waitReport(t, dir, 0)
	cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // checked by the report
	next := waitReport(t, dir, 1)
	if len(next.Result.Added) != 3 || len(next.Result.Resumed) != 0 {
		t.Fatalf("Launch after an unknown state: %+v, want every agent added anew", next.Result)
	}
	if next.ProbeInode != first.ProbeInode {
		t.Fatal("the host's own file did not cross")
	}
	for _, st := range first.Agents {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); err == nil {
			t.Fatalf("%s: the old child %d still exists (alive or unreaped)", st.Name, st.PID)
		}
		if now := byName(next)[st.Name]; now.PID == st.PID || now.State != Running {
			t.Fatalf("%s: %s PID %d after the unknown state, was PID %d", st.Name, now.State, now.PID, st.PID)
		}
	}
	stopHost(t, cmd)
}

// A new binary that dies before it resumes leaves the agents orphaned;
// the next start of the host (same containment name, or same Store
// without cgroups) kills them all.
func TestHandoverToACrashingBinaryIsCleanedUpByTheNextStart(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "state.json")
	cmd := handoverHost(t, dir, hoAgents+"=small", hoExecPath+"=/bin/false", "TEND_TEST_STORE="+store)
	first := waitReport(t, dir, 0)
	cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // checked below
	if err := cmd.Wait(); err == nil {
		t.Fatal("the host exited 0; /bin/false in its place exits 1")
	}
	var pids []int
	for _, st := range first.Agents {
		pids = append(pids, st.PID)
	}
	if !slices.ContainsFunc(pids, alive) {
		t.Fatalf("no orphan survived the crash (%v): the test proves nothing", pids)
	}
	fs, err := NewFileStore(store)
	if err != nil {
		t.Fatal(err)
	}
	opts := GroupOptions{Store: fs, Containment: Containment{Disabled: true}}
	if name := hostCgroupName(cmd); name != "" {
		opts.Containment = Containment{Name: name}
	}
	g, err := NewGroup(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(ctxTimeout(t, 5*time.Second)) //nolint:errcheck // nothing runs
	for _, pid := range pids {
		waitGone(t, pid, 5*time.Second)
	}
}

// hostCgroupName is the containment name handoverHost gave cmd.
func hostCgroupName(cmd interface{ Environ() []string }) string {
	for _, kv := range cmd.Environ() {
		if v, ok := strings.CutPrefix(kv, hoCgroup+"="); ok {
			return v
		}
	}
	return ""
}

// An agent that dies between the pause and the exec is reported by the
// new binary, once, with its status, and restarted there.
func TestHandoverExitInTheWindowReportedOnceAfter(t *testing.T) {
	dir := t.TempDir()
	cmd := handoverHost(t, dir, hoAgents+"=small", hoWindowKill+"=print-00")
	first := waitReport(t, dir, 0)
	cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // checked by the report
	waitReport(t, dir, 1)
	old := byName(first)["print-00"].PID
	restarted := func() bool {
		for _, e := range readEvents(t, dir) {
			if e.Name == "print-00" && e.Gen == 1 && e.To == Running && e.PID != old {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !restarted(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("print-00 was not restarted by the new binary")
		}
	}
	stopHost(t, cmd)
	var exits []eventLine
	for _, e := range readEvents(t, dir) {
		if e.Name == "print-00" && e.Reason == ReasonExited {
			exits = append(exits, e)
		}
	}
	if len(exits) != 1 || exits[0].Gen != 1 || exits[0].Exit == nil || exits[0].Exit.Code != 0 || exits[0].Exit.Time.IsZero() {
		t.Fatalf("exits of print-00's first child: %+v, want one, reported by generation 1, code 0 (its answer to SIGTERM)", exits)
	}
}

// An agent whose child cannot be verified after the exec (its pidfd did
// not cross) is not trusted: the child is killed, the agent reported
// with ReasonHandoverRejected and why, and started anew by Apply.
func TestHandoverRejectsAnUnverifiableChild(t *testing.T) {
	dir := t.TempDir()
	cmd := handoverHost(t, dir, hoAgents+"=small", hoLosePidfd+"=print-00")
	first := byName(waitReport(t, dir, 0))
	cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // the report says
	next := waitReport(t, dir, 1)
	old := first["print-00"].PID
	if now := byName(next)["print-00"]; now.PID == old || now.State != Running || !slices.Contains(next.Result.Added, "print-00") {
		t.Fatalf("print-00 after the exec: %+v (Launch %+v); was PID %d", now, next.Result, old)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", old)); err == nil {
		t.Fatalf("the unverified child %d still exists", old)
	}
	var rejected []eventLine
	for _, e := range readEvents(t, dir) {
		if e.Name == "print-00" && e.Reason == ReasonHandoverRejected {
			rejected = append(rejected, e)
		}
	}
	if len(rejected) != 1 || rejected[0].To != Stopped || rejected[0].Exit == nil || !strings.Contains(rejected[0].Exit.Err, "hand-over: descriptor") {
		t.Fatalf("rejection events %+v, want one saying the descriptor did not cross", rejected)
	}
	for _, name := range []string{"print-01", "notify-00"} {
		if byName(next)[name].PID != first[name].PID {
			t.Fatalf("%s was not resumed: %+v", name, byName(next)[name])
		}
	}
	stopHost(t, cmd)
}

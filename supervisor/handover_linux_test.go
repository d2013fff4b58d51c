package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/internal/cgroup"
)

// handoverHost runs the hand-over host (runHandoverHost) in dir with the
// given settings and returns it; t's cleanup kills it and every agent it
// reported, and sweeps its cgroup.
func handoverHost(t testing.TB, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cgroupName := ""
	if _, err := cgroup.Detect(); err == nil && !processGroupsOnly {
		cgroupName = fmt.Sprintf("test-handover-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	if err := os.MkdirAll(filepath.Join(dir, "seq"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), handoverHostEnv+"="+dir, "TEND_TEST_AGENT="+agentPath, hoGen+"=0", hoCgroup+"="+cgroupName)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := os.Create(filepath.Join(dir, "host.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck // gone already if the test got to the end
		cmd.Wait()         //nolint:errcheck // killed
		stderr.Close()
		for _, r := range readReports(dir) {
			for _, st := range r.Agents {
				if st.PID > 0 {
					syscall.Kill(-st.PID, syscall.SIGKILL) //nolint:errcheck // most are gone
				}
			}
		}
		if cgroupName != "" {
			if g, err := NewGroup(GroupOptions{Containment: Containment{Name: cgroupName}}); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				g.Close(ctx) //nolint:errcheck // the sweep is what matters
				cancel()
			}
		}
		if t.Failed() {
			data, _ := os.ReadFile(filepath.Join(dir, "host.stderr"))
			t.Logf("host stderr:\n%s", data)
		}
	})
	return cmd
}

// waitReport waits for generation gen's report.
func waitReport(t testing.TB, dir string, gen int) hostReport {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("report-%d.json", gen))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if data, err := os.ReadFile(path); err == nil {
			var r hostReport
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatalf("report %d: %v", gen, err)
			}
			if r.Error != "" {
				t.Fatalf("host generation %d: %s", gen, r.Error)
			}
			return r
		}
		if data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("handover-error-%d", gen-1))); err == nil {
			t.Fatalf("hand-over to generation %d failed: %s", gen, data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report from generation %d", gen)
		}
	}
}

func readReports(dir string) []hostReport {
	var out []hostReport
	for gen := 0; ; gen++ {
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("report-%d.json", gen)))
		if err != nil {
			return out
		}
		var r hostReport
		if json.Unmarshal(data, &r) == nil {
			out = append(out, r)
		}
	}
}

func byName(r hostReport) map[string]Status {
	m := map[string]Status{}
	for _, st := range r.Agents {
		m[st.Name] = st
	}
	return m
}

func readEvents(t *testing.T, dir string) []eventLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []eventLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e eventLine
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// stopHost ends the host with SIGTERM (it closes its Group) and waits.
func stopHost(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // checked by Wait
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("host: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("host did not end after SIGTERM")
	}
}

// A host supervising 50 agents re-execs itself ten times (once right
// after the previous exec, before any Apply): every agent keeps its
// child, counters and deadlines, every line printed is in its log once
// and whole, events continue in order, and nothing grows.
func TestHandoverKeepsAgentsAcrossTenExecs(t *testing.T) {
	dir := t.TempDir()
	const rounds, bounce = 10, 5
	cmd := handoverHost(t, dir, hoAgents+"=fleet", hoBounce+"="+strconv.Itoa(bounce))
	first := waitReport(t, dir, 0)
	if len(first.Agents) != 50 {
		t.Fatalf("%d agents, want 50", len(first.Agents))
	}
	before := byName(first)
	stopKillAt := time.Time{}
	var reports []hostReport
	gen := 0
	for round := 1; round <= rounds; round++ {
		time.Sleep(250 * time.Millisecond) // output flows meanwhile; the rounds outlast stopping-00's StopTimeout
		if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		gen++
		if gen == bounce {
			gen++ // generation 5 handed over at once to 6
		}
		r := waitReport(t, dir, gen)
		reports = append(reports, r)
		if len(r.Agents) != 50 {
			t.Fatalf("generation %d: %d agents", gen, len(r.Agents))
		}
		if len(r.Result.Resumed) != 50 || len(r.Result.Added)+len(r.Result.Restarted) != 0 {
			t.Fatalf("generation %d: Launch %+v, want all 50 resumed", gen, r.Result)
		}
		if r.ProbeInode != first.ProbeInode {
			t.Fatalf("generation %d: the host's own file did not cross (inode %d, want %d)", gen, r.ProbeInode, first.ProbeInode)
		}
		for name, st := range byName(r) {
			was := before[name]
			if name == "stopping-00" && st.State == Stopped {
				if st.LastExit == nil || st.LastExit.Signal != Signal(syscall.SIGKILL) {
					t.Fatalf("generation %d: stopping-00 ended with %v, want SIGKILL at its stop timeout", gen, st.LastExit)
				}
				stopKillAt = st.LastExit.Time
				continue
			}
			if st.PID != was.PID || st.State != was.State || st.Restarts != was.Restarts || st.Run != was.Run {
				t.Fatalf("generation %d: %s is %s PID %d run %d restarts %d; was %s PID %d run %d restarts %d",
					gen, name, st.State, st.PID, st.Run, st.Restarts, was.State, was.PID, was.Run, was.Restarts)
			}
			if !st.NextRestartAt.Equal(was.NextRestartAt) || st.Streak != was.Streak {
				t.Fatalf("generation %d: %s next restart %v streak %d; was %v streak %d", gen, name, st.NextRestartAt, st.Streak, was.NextRestartAt, was.Streak)
			}
		}
	}
	// stopping-00 was asked to stop before the first exec with 1.5 s to
	// go: the deadline crossed every exec, so it was killed meanwhile.
	if stopKillAt.IsZero() {
		t.Fatal("stopping-00 was not killed at its stop timeout across the hand-overs")
	}
	// From the first binary born after stopping-00 ended on (the one it
	// ended in may still drain its pipes), every one holds the same:
	// nothing a hand-over carries grows.
	last, firstResumed := reports[len(reports)-1], reports[0]
	for i, r := range reports[:len(reports)-1] {
		if byName(r)["stopping-00"].State == Stopped {
			firstResumed = reports[i+1]
			break
		}
	}
	if last.FDs != firstResumed.FDs || last.Goroutines != firstResumed.Goroutines {
		t.Fatalf("generation %d: %d fds, %d goroutines; generation %d: %d fds, %d goroutines",
			last.Gen, last.FDs, last.Goroutines, firstResumed.Gen, firstResumed.FDs, firstResumed.Goroutines)
	}
	// A thread per agent (a waiter that fell back to a blocking wait
	// after the exec) would show as 50 more; the runtime's own vary.
	for _, r := range reports {
		if r.Threads > 25 {
			t.Fatalf("generation %d: %d threads for 50 agents", r.Gen, r.Threads)
		}
	}
	t.Logf("resumed in %v after the last hand-over; %d fds, %d goroutines, %d threads", last.ResumedIn, last.FDs, last.Goroutines, last.Threads)
	stopHost(t, cmd)
	checkSequenceLogs(t, dir, 20)
	checkEventOrder(t, readEvents(t, dir), gen, bounce)
}

var seqLine = regexp.MustCompile(`^seq (\d+) (\d+) (\d+)$`)

// checkSequenceLogs checks the fleet's printer logs (checkSequenceFile).
func checkSequenceLogs(t *testing.T, dir string, printers int) {
	t.Helper()
	for i := range printers {
		checkSequenceFile(t, filepath.Join(dir, fmt.Sprintf("print-%02d.log", i)), filepath.Join(dir, "seq"))
	}
}

// checkSequenceFile checks that a printer's log holds every line its
// one child wrote (at least as many as it recorded in seqDir), each
// once and whole; only its very last line may be cut, by its stop.
func checkSequenceFile(t *testing.T, path, seqDir string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	lastCut := map[string]bool{}
	for n, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		m := seqLine.FindStringSubmatch(line)
		if line == "terminating" { // the agent's answer to the SIGTERM of Close
			continue
		}
		if m == nil {
			pid := strings.Fields(line + " x x")[1]
			if !strings.HasPrefix(line, "seq ") || lastCut[pid] {
				t.Fatalf("%s line %d: %q is not a whole line", path, n+1, line)
			}
			lastCut[pid] = true // allowed once, if nothing of that PID follows
			continue
		}
		pid := m[1]
		if lastCut[pid] {
			t.Fatalf("%s line %d: process %s printed after a cut line", path, n+1, pid)
		}
		seq, _ := strconv.Atoi(m[2])
		if want := next[pid] + 1; seq != want {
			t.Fatalf("%s line %d: process %s line %d, want %d (a line lost or duplicated)", path, n+1, pid, seq, want)
		}
		next[pid] = seq
	}
	if len(next) != 1 {
		t.Fatalf("%s: lines of %d processes, want one child for the whole test", path, len(next))
	}
	for pid, got := range next {
		raw, err := os.ReadFile(filepath.Join(seqDir, pid))
		if err != nil {
			t.Fatal(err)
		}
		wrote, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		if got < wrote-1 || got < 20 {
			t.Fatalf("%s: %d whole lines of process %s, which recorded %d", path, got, pid, wrote)
		}
	}
}

// checkEventOrder checks every agent's events chain (each starts where
// the last ended), across every binary, and that each binary after the
// first announced each agent as handed over.
func checkEventOrder(t *testing.T, events []eventLine, lastGen, bounced int) {
	t.Helper()
	last := map[string]eventLine{}
	handed := map[string][]int{}
	for _, e := range events {
		if prev, ok := last[e.Name]; ok && e.From != prev.To {
			t.Fatalf("%s: event %s -> %s (%s) in generation %d follows %s -> %s in generation %d",
				e.Name, e.From, e.To, e.Reason, e.Gen, prev.From, prev.To, prev.Gen)
		}
		if prev, ok := last[e.Name]; ok && e.Gen < prev.Gen {
			t.Fatalf("%s: an event of generation %d after one of generation %d", e.Name, e.Gen, prev.Gen)
		}
		last[e.Name] = e
		if e.Reason == ReasonHandedOver {
			handed[e.Name] = append(handed[e.Name], e.Gen)
		}
	}
	for name, gens := range handed {
		var want []int
		for g := 1; g <= lastGen; g++ {
			if g != bounced { // it handed over before any Apply claimed them
				want = append(want, g)
			}
		}
		if !slices.Equal(gens, want) {
			t.Fatalf("%s handed over in generations %v, want %v", name, gens, want)
		}
	}
	if len(handed) != 50 {
		t.Fatalf("%d agents handed over, want 50", len(handed))
	}
}

// A lone Process hands its agent over too: New in the next binary takes
// it over, same child, its output whole.
func TestLoneProcessHandover(t *testing.T) {
	dir := t.TempDir()
	cmd := handoverHost(t, dir, hoAgents+"=lone")
	first := waitReport(t, dir, 0).Agents[0]
	for gen := 1; gen <= 3; gen++ {
		time.Sleep(50 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // the report says
		st := waitReport(t, dir, gen).Agents[0]
		if st.PID != first.PID || st.Run != first.Run || st.State != Running {
			t.Fatalf("generation %d: %s PID %d run %d; was PID %d run %d", gen, st.State, st.PID, st.Run, first.PID, first.Run)
		}
	}
	stopHost(t, cmd)
	checkSequenceFile(t, filepath.Join(dir, "print-00.log"), filepath.Join(dir, "seq"))
}

// Across an exec, an agent whose main process is its MAINPID= successor
// (its leader long reaped) is followed by the new binary to its end; an
// agent with a parent-death signal gets it (its forking thread ends with
// the exec) and is restarted as by Restart, not counted as a crash.
func TestHandoverOfASuccessorAndAParentDeathSignal(t *testing.T) {
	systemdNotify(t)
	dir := t.TempDir()
	cmd := handoverHost(t, dir, hoAgents+"=special")
	first := byName(waitReport(t, dir, 0))
	waitGone(t, readPIDs(t, filepath.Join(dir, "leader"), 1)[0], 5*time.Second) // the shell exits; its sleep is the agent now
	cmd.Process.Signal(syscall.SIGUSR2)                                         //nolint:errcheck // the report says
	next := byName(waitReport(t, dir, 1))
	successor := next["mainpid"]
	if !alive(successor.PID) || successor.Run != first["mainpid"].Run || successor.State != Running {
		t.Fatalf("mainpid after the exec: %+v; before: %+v", successor, first["mainpid"])
	}
	syscall.Kill(successor.PID, syscall.SIGKILL) //nolint:errcheck // its end is what the new binary must see
	ended := func() *eventLine {
		for _, e := range readEvents(t, dir) {
			if e.Name == "mainpid" && e.Gen == 1 && e.From == Running && e.To == Exited {
				return &e
			}
		}
		return nil
	}
	for deadline := time.Now().Add(10 * time.Second); ended() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the new binary did not see the successor's end")
		}
	}
	var pdeath []eventLine
	for deadline := time.Now().Add(10 * time.Second); len(pdeath) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pdeath in generation 1: %+v, want its end and a restart", pdeath)
		}
		pdeath = pdeath[:0]
		for _, e := range readEvents(t, dir) {
			if e.Name == "pdeath" && e.Gen == 1 && e.Reason != ReasonHandedOver {
				pdeath = append(pdeath, e)
			}
		}
	}
	// The agent answers its SIGTERM by exiting 0; the restart is the
	// hand-over's, requested, not a crash.
	if end := pdeath[0]; end.Reason != ReasonRestartRequested || end.Exit == nil || !end.Exit.Requested || pdeath[1].To != Running {
		t.Fatalf("pdeath in generation 1: %+v (exit %+v), want its requested end and restart, then Running", pdeath, pdeath[0].Exit)
	}
	stopHost(t, cmd)
}

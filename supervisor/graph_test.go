package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// agentTimesAll reads what test agents wrote with -times to path: every
// moment of one kind ("start", "ready", "term", "exit"), in order.
func agentTimesAll(t *testing.T, path, kind string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for line := range strings.Lines(string(b)) {
		what, ns, _ := strings.Cut(strings.TrimSpace(line), " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if err != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		if what == kind {
			out = append(out, time.Unix(0, n))
		}
	}
	return out
}

// agentTimes is the first moment of each kind in path.
func agentTimes(t *testing.T, path string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, kind := range []string{"start", "ready", "term", "exit"} {
		if all := agentTimesAll(t, path, kind); len(all) > 0 {
			out[kind] = all[0]
		}
	}
	return out
}

// timedSpec is a notify agent that reports READY=1 after readyAfter and
// writes its times to dir/NAME.
func timedSpec(t *testing.T, dir, name string, readyAfter time.Duration, deps map[string]Dependency) Spec {
	s := groupSpec(t, name, "-notify-ready-after", readyAfter.String(), "-times", filepath.Join(dir, name))
	s.NotifyReady = true
	s.DependsOn = deps
	return s
}

// A diamond (a <- b, c <- d, each needing the one before ready) starts in
// dependency order with b and c in parallel, and stops in reverse, by the
// agents' own clocks.
func TestDependencyDiamondStartsInOrderStopsInReverse(t *testing.T) {
	dir := t.TempDir()
	g := newGroup(t, GroupOptions{})
	ready := map[string]Dependency{"a": {Condition: ConditionReady}}
	specs := []Spec{
		timedSpec(t, dir, "d", 300*time.Millisecond, map[string]Dependency{"b": {Condition: ConditionReady}, "c": {Condition: ConditionReady}}),
		timedSpec(t, dir, "b", time.Second, ready),
		timedSpec(t, dir, "c", time.Second, ready),
		timedSpec(t, dir, "a", 300*time.Millisecond, nil),
	}
	if _, err := g.Apply(ctxTimeout(t, 30*time.Second), specs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, st := range g.List() {
		if st.State != Running {
			t.Fatalf("%s is %v after Apply, want running", st.Name, st.State)
		}
	}
	if err := g.StopAll(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	a, b, c, d := agentTimes(t, filepath.Join(dir, "a")), agentTimes(t, filepath.Join(dir, "b")), agentTimes(t, filepath.Join(dir, "c")), agentTimes(t, filepath.Join(dir, "d"))
	for name, ok := range map[string]bool{
		"b starts after a is ready":              b["start"].After(a["ready"]),
		"c starts after a is ready":              c["start"].After(a["ready"]),
		"d starts after b and c are ready":       d["start"].After(b["ready"]) && d["start"].After(c["ready"]),
		"b and c run their starts in parallel":   b["start"].Before(c["ready"]) && c["start"].Before(b["ready"]),
		"d is told to stop before b and c":       d["term"].Before(b["term"]) && d["term"].Before(c["term"]),
		"b and c are told to stop before a":      b["term"].Before(a["term"]) && c["term"].Before(a["term"]),
		"every agent was told to stop (SIGTERM)": !a["term"].IsZero() && !b["term"].IsZero() && !c["term"].IsZero() && !d["term"].IsZero(),
	} {
		if !ok {
			t.Errorf("not so: %s (a %v, b %v, c %v, d %v)", name, a, b, c, d)
		}
	}
}

// A dependency that crash-loops to Failed leaves its dependent Waiting,
// saying for what; the dependent's Start fails with that reason.
func TestFailedDependencyLeavesDependentWaiting(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	crasher := groupSpec(t, "collector", "-after", "10ms", "-exit", "2")
	crasher.Restart = RestartSpec{MaxRestarts: 2, RetryFailedAfter: -1, Backoff: backoff.None()}
	dependent := groupSpec(t, "exporter")
	dependent.DependsOn = map[string]Dependency{"collector": {Condition: ConditionReady}}
	_, err := g.Apply(ctxTimeout(t, 20*time.Second), []Spec{crasher, dependent})
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), `agent "exporter"`) || !strings.Contains(err.Error(), "collector (ready): failed") {
		t.Fatalf("Apply: %v; want the exporter's start failed for the collector", err)
	}
	p, _ := g.Get("exporter")
	st := p.Status()
	if st.State != Waiting || !strings.Contains(st.WaitingFor, "collector (ready): failed after exit code 2") || st.PID != 0 || st.Run != 0 {
		t.Fatalf("exporter: %v waiting for %q, run %d; want waiting for the failed collector, never spawned", st.State, st.WaitingFor, st.Run)
	}
	// The operator fixes and starts the collector: the exporter follows.
	fixed := groupSpec(t, "collector")
	if _, err := g.Apply(ctxTimeout(t, 20*time.Second), []Spec{fixed, dependent}); err != nil {
		t.Fatalf("Apply of the fixed collector: %v", err)
	}
	waitStates(t, g, map[string]State{"collector": Running, "exporter": Running})
}

// With propagate: restart, a dependency's crash restarts exactly its
// rest_for_one dependents, after it is ready again; others keep their
// child.
func TestPropagateRestartRestartsExactlyTheDependents(t *testing.T) {
	dir := t.TempDir()
	g := newGroup(t, GroupOptions{})
	collector := timedSpec(t, dir, "collector", 100*time.Millisecond, nil)
	collector.Restart.Backoff = backoff.None()
	specs := []Spec{collector,
		timedSpec(t, dir, "bound", 100*time.Millisecond, map[string]Dependency{"collector": {Condition: ConditionReady, Propagate: PropagateRestart}}),
		timedSpec(t, dir, "loose", 100*time.Millisecond, map[string]Dependency{"collector": {Condition: ConditionReady}}),
		timedSpec(t, dir, "alone", 100*time.Millisecond, nil),
	}
	if _, err := g.Apply(ctxTimeout(t, 20*time.Second), specs); err != nil {
		t.Fatal(err)
	}
	before := map[string]Status{}
	for _, st := range g.List() {
		before[st.Name] = st
	}
	syscall.Kill(before["collector"].PID, syscall.SIGKILL) //nolint:errcheck // its exit is checked below
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, _ := g.Get("collector")
		b, _ := g.Get("bound")
		if cs, bs := c.Status(), b.Status(); cs.State == Running && cs.Run == 2 && bs.State == Running && bs.Run == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector and bound not both on their second run: %v", g.List())
		}
	}
	for _, st := range g.List() {
		restarted := st.PID != before[st.Name].PID
		if want := st.Name == "collector" || st.Name == "bound"; restarted != want {
			t.Errorf("%s: PID %d -> %d; restarted %v, want %v", st.Name, before[st.Name].PID, st.PID, restarted, want)
		}
	}
	p, _ := g.Get("bound")
	if st := p.Status(); st.Restarts != 0 || st.LastExit == nil || !st.LastExit.Requested {
		t.Errorf("bound: restarts %d, last exit %+v; want a requested stop, not counted", st.Restarts, st.LastExit)
	}
	// bound's second child started after the collector's second was ready.
	starts, readies := agentTimesAll(t, filepath.Join(dir, "bound"), "start"), agentTimesAll(t, filepath.Join(dir, "collector"), "ready")
	if len(starts) != 2 || len(readies) != 2 {
		t.Fatalf("bound started %d times, collector ready %d times; want 2 and 2", len(starts), len(readies))
	}
	if !starts[1].After(readies[1]) {
		t.Errorf("bound restarted at %v, before the collector's new run was ready at %v", starts[1], readies[1])
	}
}

// With propagate: stop, a dependency stopped by the operator stops its
// dependent, which waits, and starts again with it; a plain dependent
// keeps running.
func TestPropagateStopFollowsTheDependency(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	bound := groupSpec(t, "bound")
	bound.DependsOn = map[string]Dependency{"db": {Condition: ConditionStarted, Propagate: PropagateStop}}
	loose := groupSpec(t, "loose")
	loose.DependsOn = map[string]Dependency{"db": {}}
	if _, err := g.Apply(ctxTimeout(t, 20*time.Second), []Spec{groupSpec(t, "db"), bound, loose}); err != nil {
		t.Fatal(err)
	}
	lp, _ := g.Get("loose")
	loosePID := lp.Status().PID
	if err := g.Stop(ctxTimeout(t, 10*time.Second), "db"); err != nil {
		t.Fatal(err)
	}
	waitStates(t, g, map[string]State{"bound": Waiting})
	bp, _ := g.Get("bound")
	if st := bp.Status(); !strings.Contains(st.WaitingFor, "db (started): stopped") {
		t.Fatalf("bound waits for %q", st.WaitingFor)
	}
	if err := g.Start(ctxTimeout(t, 10*time.Second), "db"); err != nil {
		t.Fatal(err)
	}
	waitStates(t, g, map[string]State{"bound": Running})
	if st := lp.Status(); st.State != Running || st.PID != loosePID {
		t.Fatalf("loose: %v PID %d, want still running as %d", st.State, st.PID, loosePID)
	}
}

// A cycle, a self-dependency or an unknown name rejects the whole Apply,
// the cycle spelled out, and nothing running changes.
func TestDependencyGraphErrorsRejectApply(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{groupSpec(t, "a"), groupSpec(t, "b")}); err != nil {
		t.Fatal(err)
	}
	before := g.List()
	dep := func(name string, on ...string) Spec {
		s := groupSpec(t, name)
		s.DependsOn = map[string]Dependency{}
		for _, o := range on {
			s.DependsOn[o] = Dependency{Condition: ConditionReady}
		}
		return s
	}
	for _, tc := range []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{dep("a", "c"), dep("b", "a"), dep("c", "b")}, "a -> c -> b -> a"},
		{[]Spec{dep("a", "a"), dep("b")}, "an agent cannot depend on itself"},
		{[]Spec{dep("a", "x"), dep("b")}, `field "depends_on.x" = x: no agent of that name in the set`},
	} {
		_, err := g.Apply(ctxTimeout(t, 10*time.Second), tc.specs)
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Apply: %v; want rejected with %q", err, tc.want)
		}
	}
	if after := g.List(); len(after) != 2 || after[0].PID != before[0].PID || after[1].PID != before[1].PID {
		t.Fatalf("members changed: %v -> %v", before, after)
	}
	if err := g.Remove(ctxTimeout(t, 10*time.Second), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Add(dep("c", "a")); err == nil || !strings.Contains(err.Error(), "add it first") {
		t.Fatalf("Add with an unknown dependency: %v", err)
	}
	if _, err := g.Add(dep("c", "b")); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctxTimeout(t, 10*time.Second), "b"); err == nil || !strings.Contains(err.Error(), "needed by c") {
		t.Fatalf("Remove of a needed agent: %v", err)
	}
}

// A task that exits 0 completes, and Start returns nil (it used to fail
// with "start failed: exit code 0"); one that fails retries through the
// backoff until it succeeds.
func TestTaskCompletesAndRetriesWithBackoff(t *testing.T) {
	truth, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	p := newProcess(t, Spec{Name: "setup", Path: truth, Task: &TaskSpec{}})
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start of /bin/true as a task: %v", err)
	}
	if st := p.Status(); st.State != Completed || st.LastExit == nil || st.LastExit.Code != 0 || st.Restarts != 0 {
		t.Fatalf("status %v, exit %+v, restarts %d; want completed with exit code 0", st.State, st.LastExit, st.Restarts)
	}

	count := filepath.Join(t.TempDir(), "count")
	flaky := Spec{Name: "flaky", Path: "/bin/sh", Task: &TaskSpec{},
		Args:    []string{"-c", `n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"; [ $n -ge 3 ]`, "sh", count},
		Restart: RestartSpec{FirstDelay: config.Duration(150 * time.Millisecond), Backoff: backoff.Constant(150 * time.Millisecond)}}
	q := newProcess(t, flaky)
	rec := record(t, q)
	if err := q.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start of a task that succeeds on its third run: %v", err)
	}
	st := q.Status()
	if st.State != Completed || st.Restarts != 2 {
		t.Fatalf("status %v, restarts %d; want completed after 2 restarts", st.State, st.Restarts)
	}
	rec.waitState(t, 5*time.Second, Completed)
	var backoffs int
	for _, e := range rec.snapshot() {
		if e.To == Backoff {
			backoffs++
			if wait := e.Status.NextRestartAt.Sub(e.Status.LastExit.Time); wait != 150*time.Millisecond {
				t.Errorf("restart due %v after the exit, want 150ms", wait)
			}
		}
	}
	if backoffs != 2 {
		t.Fatalf("%d backoffs, want 2", backoffs)
	}
}

// A plain agent (not a task) that exits 0 at once still fails to start:
// the task is what a short program must be.
func TestShortProgramNeedsTask(t *testing.T) {
	truth, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	p := newProcess(t, Spec{Name: "short", Path: truth, Restart: RestartSpec{Policy: RestartNever}})
	if err := p.Start(ctxTimeout(t, 10*time.Second)); !errors.Is(err, ErrStartFailed) {
		t.Fatalf("Start: %v, want ErrStartFailed", err)
	}
	if _, err := New(Spec{Name: "x", Path: truth, Task: &TaskSpec{}, Restart: RestartSpec{Policy: RestartAlways}}); err == nil || !strings.Contains(err.Error(), "restart.policy") {
		t.Fatalf("a task with restart always: %v", err)
	}
}

// With a Store, a scheduled run that came due while the host was down
// runs once when the next host starts the task; one not yet due waits.
func TestScheduledTaskRunsWhatTheStoreSaysWasMissed(t *testing.T) {
	truth, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	store, err := NewFileStore(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for name, last := range map[string]time.Time{"missed": now.Add(-2 * time.Hour), "recent": now.Add(-10 * time.Minute)} {
		if err := store.Put(Record{Name: name, State: Completed, StartedAt: last, UpdatedAt: last}); err != nil {
			t.Fatal(err)
		}
	}
	g := newGroup(t, GroupOptions{Store: store})
	var specs []Spec
	for _, name := range []string{"missed", "recent"} {
		specs = append(specs, Spec{Name: name, Path: truth, Task: &TaskSpec{Schedule: "@every 1h"}})
	}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), specs); err != nil {
		t.Fatal(err)
	}
	waitStates(t, g, map[string]State{"missed": Completed, "recent": Waiting})
	missed, _ := g.Get("missed")
	if st := missed.Status(); st.StartedAt.Before(now) || st.NextRunAt.Sub(st.StartedAt) < 59*time.Minute {
		t.Fatalf("missed: started %v, next run %v; want a run now and the next in an hour", st.StartedAt, st.NextRunAt)
	}
	recent, _ := g.Get("recent")
	if st := recent.Status(); st.Run != 0 || !st.NextRunAt.Equal(now.Add(50*time.Minute).Round(time.Second)) && !st.NextRunAt.Equal(now.Add(50*time.Minute).Truncate(time.Second)) {
		t.Fatalf("recent: run %d, next %v; want no run yet, the next an hour after the last (%v)", st.Run, st.NextRunAt, now.Add(50*time.Minute))
	}
}

// Apply changes dependencies and schedules in place: the agents whose
// depends_on or schedule changed are Updated and keep their child.
func TestApplyChangesDependenciesInPlace(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	b := groupSpec(t, "b")
	b.DependsOn = map[string]Dependency{"a": {Condition: ConditionReady}}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{groupSpec(t, "a"), b}); err != nil {
		t.Fatal(err)
	}
	before := g.List()
	b.DependsOn = map[string]Dependency{"a": {Condition: ConditionStarted, Propagate: PropagateStop}}
	res, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{groupSpec(t, "a"), b})
	if err != nil || len(res.Updated) != 1 || res.Updated[0] != "b" || len(res.Restarted) != 0 {
		t.Fatalf("Apply: %+v, %v; want b updated in place", res, err)
	}
	if after := g.List(); after[0].PID != before[0].PID || after[1].PID != before[1].PID {
		t.Fatalf("PIDs changed: %v -> %v", before, after)
	}
	// The new propagation is in force: stopping a now stops b.
	if err := g.Stop(ctxTimeout(t, 10*time.Second), "a"); err != nil {
		t.Fatal(err)
	}
	waitStates(t, g, map[string]State{"b": Waiting})
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

func newGroup(t *testing.T, opts GroupOptions) *Group {
	t.Helper()
	g, err := NewGroup(testGroupOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(ctxTimeout(t, 20*time.Second)); err != nil {
			t.Errorf("cleanup Close: %v", err)
		}
		for _, st := range g.List() {
			if p, ok := g.Get(st.Name); ok {
				p.Wait(ctxTimeout(t, 5*time.Second))
			}
		}
	})
	return g
}

func groupSpec(t *testing.T, name string, args ...string) Spec {
	s := agentSpec(t, args...)
	s.Name = name
	s.Logger = s.Logger.WithName(name)
	return s
}

func TestGroupRegistry(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	for _, name := range []string{"b", "a", "c"} {
		if _, err := g.Add(groupSpec(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Add(groupSpec(t, "a")); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate Add: %v, want ErrExists", err)
	}
	if _, err := g.Add(groupSpec(t, "x/y")); err == nil {
		t.Fatal("Add accepted a name with a slash")
	}
	var names []string
	for _, st := range g.List() {
		names = append(names, st.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("List names %v, want a b c", names)
	}
	if err := g.Start(ctxTimeout(t, 5*time.Second), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start of unknown agent: %v, want ErrNotFound", err)
	}
	if err := g.Start(ctxTimeout(t, 5*time.Second), "b"); err != nil {
		t.Fatal(err)
	}
	p, _ := g.Get("b")
	pid := p.Status().PID
	if err := g.Remove(ctxTimeout(t, 5*time.Second), "b"); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatal("Remove left the agent running")
	}
	if _, ok := g.Get("b"); ok {
		t.Fatal("Get found a removed agent")
	}
	if err := g.Remove(ctxTimeout(t, time.Second), "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v, want ErrNotFound", err)
	}
}

// 100 agents start together; a third of them are SIGKILLed from outside;
// all come back; StopAll leaves no process alive.
func TestGroupHundredAgentsRecoverFromExternalKills(t *testing.T) {
	n := 100
	if testing.Short() {
		n = 20
	}
	g := newGroup(t, GroupOptions{})
	events := make(chan Event, 10*n)
	defer g.Subscribe(func(e Event) { events <- e })()
	for i := range n {
		s := groupSpec(t, fmt.Sprintf("agent-%03d", i))
		s.Logger = s.Logger.V(1)
		if _, err := g.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.StartAll(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, st := range g.List() {
		if st.State != Running || !alive(st.PID) {
			t.Fatalf("after StartAll: %+v", st)
		}
		before[st.Name] = st.PID
	}
	victims := map[string]bool{}
	for _, i := range rand.Perm(n)[:n/3] {
		name := fmt.Sprintf("agent-%03d", i)
		victims[name] = true
		syscall.Kill(before[name], syscall.SIGKILL)
	}
	deadline := time.After(30 * time.Second)
	for back := map[string]bool{}; len(back) < len(victims); {
		select {
		case e := <-events:
			if victims[e.Name] && e.To == Running && e.Status.Restarts == 1 {
				back[e.Name] = true
			}
		case <-deadline:
			t.Fatalf("only %d of %d killed agents came back", len(back), len(victims))
		}
	}
	for _, st := range g.List() {
		if victims[st.Name] == (st.PID == before[st.Name]) || st.State != Running {
			t.Errorf("%s: %+v (victim %v, pid before %d)", st.Name, st, victims[st.Name], before[st.Name])
		}
	}
	var pids []int
	for _, st := range g.List() {
		pids = append(pids, st.PID)
	}
	if err := g.StopAll(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after StopAll", pid)
		}
	}
}

func TestGroupApply(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	base := map[string]Spec{
		"keep":    groupSpec(t, "keep"),
		"change":  groupSpec(t, "change"),
		"policy":  groupSpec(t, "policy"),
		"remove":  groupSpec(t, "remove"),
		"disable": groupSpec(t, "disable"),
	}
	res, err := g.Apply(ctxTimeout(t, 10*time.Second), slices.Collect(maps.Values(base)))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 5 {
		t.Fatalf("first Apply: %+v, want 5 added", res)
	}
	pids := pidsOf(g)
	for name, pid := range pids {
		if pid == 0 || !alive(pid) {
			t.Fatalf("%s not running after Apply: pid %d", name, pid)
		}
	}

	next := []Spec{base["keep"]}
	changed := base["change"]
	changed.Args = []string{"-text", "new"}
	policy := base["policy"]
	policy.Restart.Policy = RestartOnFailure
	policy.StopTimeout = config.Duration(3 * time.Second)
	disabled := base["disable"]
	off := false
	disabled.Enabled = &off
	added := groupSpec(t, "added")
	next = append(next, changed, policy, disabled, added)
	res, err = g.Apply(ctxTimeout(t, 10*time.Second), next)
	if err != nil {
		t.Fatal(err)
	}
	want := ApplyResult{Added: []string{"added"}, Removed: []string{"remove"}, Restarted: []string{"change"},
		Updated: []string{"disable", "policy"}, Unchanged: []string{"keep"}}
	if !equalResult(res, want) {
		t.Fatalf("Apply = %+v, want %+v", res, want)
	}
	after := pidsOf(g)
	switch {
	case after["keep"] != pids["keep"]:
		t.Error("unchanged agent got a new child")
	case after["policy"] != pids["policy"]:
		t.Error("a supervision-only change restarted the child")
	case after["change"] == pids["change"] || !alive(after["change"]):
		t.Errorf("changed agent: pid %d -> %d, want a new live child", pids["change"], after["change"])
	case alive(pids["change"]) || alive(pids["remove"]) || alive(pids["disable"]):
		t.Error("an old, removed or disabled child is still alive")
	case after["added"] == 0 || !alive(after["added"]):
		t.Error("added agent not running")
	}
	if _, ok := g.Get("remove"); ok {
		t.Error("removed agent still registered")
	}
	if p, _ := g.Get("policy"); p.settings().policy != RestartOnFailure || p.settings().stopTimeout != 3*time.Second {
		t.Error("supervision change not applied")
	}
}

func TestGroupApplyRejectsBadSpecAndChangesNothing(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{groupSpec(t, "a"), groupSpec(t, "b")}); err != nil {
		t.Fatal(err)
	}
	before := pidsOf(g)
	bad := groupSpec(t, "c")
	bad.Path = "/nonexistent/agent"
	_, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{groupSpec(t, "a"), bad})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "binary_path" {
		t.Fatalf("Apply with a bad spec: %v, want a FieldError on binary_path", err)
	}
	_, err = g.Apply(ctxTimeout(t, 10*time.Second), []Spec{groupSpec(t, "a"), groupSpec(t, "a")})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Apply with a duplicate: %v, want ErrExists", err)
	}
	after := pidsOf(g)
	if len(after) != 2 || after["a"] != before["a"] || after["b"] != before["b"] || !alive(after["b"]) {
		t.Fatalf("a rejected Apply changed the group: %v -> %v", before, after)
	}
}

// With a budget of 4 restarts per second, 5 agents that crash at once
// cannot restart more than the budget allows, and say so in events.
func TestGroupRestartBudget(t *testing.T) {
	g := newGroup(t, GroupOptions{Budget: Budget{Restarts: 4, Per: config.Duration(time.Second)}})
	var mu sync.Mutex
	var restarts []time.Time
	budgetEvents := 0
	defer g.Subscribe(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Reason == ReasonBackoffElapsed {
			restarts = append(restarts, e.Time)
		}
		if e.Reason == ReasonRestartBudget {
			budgetEvents++
		}
	})()
	for i := range 5 {
		s := groupSpec(t, fmt.Sprintf("crash-%d", i), "-exit", "1", "-after", "1ms")
		s.Restart.MaxRestarts = -1
		s.Restart.Backoff = backoff.None()
		g.Add(s)
	}
	go g.StartAll(context.Background())
	time.Sleep(2500 * time.Millisecond)
	g.StopAll(ctxTimeout(t, 10*time.Second))
	mu.Lock()
	defer mu.Unlock()
	// In any 1s window: at most the burst (4) plus the 4 that refill.
	for i := range restarts {
		in := 0
		for _, r := range restarts[i:] {
			if r.Sub(restarts[i]) < time.Second {
				in++
			}
		}
		if in > 8 {
			t.Fatalf("%d restarts within 1s starting at #%d; the budget allows 4 per second", in, i)
		}
	}
	if len(restarts) < 4 || budgetEvents == 0 {
		t.Fatalf("%d restarts, %d budget events: want restarts to happen and the budget to bite", len(restarts), budgetEvents)
	}
	t.Logf("%d restarts in 2.5s, %d budget events", len(restarts), budgetEvents)
}

// StopAll under one deadline: agents that ignore SIGTERM with a 30s
// StopTimeout are SIGKILLed in time for StopAll to return by the deadline.
func TestGroupStopAllHonoursDeadline(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	for i := range 5 {
		s := groupSpec(t, fmt.Sprintf("stubborn-%d", i), "-ignore-term")
		s.StopTimeout = config.Duration(30 * time.Second)
		g.Add(s)
	}
	if err := g.StartAll(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	pids := pidsOf(g)
	begin := time.Now()
	err := g.StopAll(ctxTimeout(t, time.Second))
	took := time.Since(begin)
	if err != nil || took > 1500*time.Millisecond {
		t.Fatalf("StopAll: %v after %v, want nil within the 1s deadline", err, took)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s (pid %d) alive after StopAll", name, pid)
		}
	}
}

func TestGroupConcurrentOperations(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range 25 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				name := fmt.Sprintf("c-%d", r.IntN(4))
				switch r.IntN(5) {
				case 0:
					g.Add(groupSpec(t, name))
				case 1:
					g.Remove(ctx, name)
				case 2:
					g.Apply(ctx, []Spec{groupSpec(t, "c-0"), groupSpec(t, name)})
				case 3:
					g.StartAll(ctx)
				case 4:
					g.StopAll(ctx)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	var pids []int
	for _, st := range g.List() {
		pids = append(pids, st.PID)
	}
	if err := g.StopAll(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if pid != 0 && alive(pid) {
			t.Errorf("pid %d alive after StopAll", pid)
		}
	}
}

func TestGroupKinds(t *testing.T) {
	g := newGroup(t, GroupOptions{Kinds: map[string]Kind{
		"echo": func(s Spec) ([]string, error) { return []string{"-text", s.ConfigFile}, nil },
	}})
	s := groupSpec(t, "t")
	s.Args, s.Type, s.ConfigFile = nil, "telegraf", "/etc/telegraf/telegraf.conf"
	p, err := g.Add(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.settings().contract.args; !slices.Equal(got, []string{"-config", "/etc/telegraf/telegraf.conf"}) {
		t.Fatalf("telegraf args %v", got)
	}
	s = groupSpec(t, "h")
	s.Args, s.Type, s.ConfigFile = nil, "echo", "cfg"
	if p, err = g.Add(s); err != nil || !slices.Equal(p.settings().contract.args, []string{"-text", "cfg"}) {
		t.Fatalf("host kind: %v %v", err, p)
	}
	s = groupSpec(t, "u")
	s.Args, s.Type = nil, "mystery"
	var fe *config.FieldError
	if _, err := g.Add(s); !errors.As(err, &fe) || fe.Field != "type" {
		t.Fatalf("unknown type: %v", err)
	}
	s.Type, s.ConfigFile = "filebeat", ""
	if _, err := g.Add(s); !errors.As(err, &fe) || fe.Field != "config_file" {
		t.Fatalf("filebeat without config_file: %v", err)
	}
}

func pidsOf(g *Group) map[string]int {
	out := map[string]int{}
	for _, st := range g.List() {
		out[st.Name] = st.PID
	}
	return out
}

func equalResult(a, b ApplyResult) bool {
	return slices.Equal(a.Added, b.Added) && slices.Equal(a.Removed, b.Removed) &&
		slices.Equal(a.Restarted, b.Restarted) && slices.Equal(a.Updated, b.Updated) &&
		slices.Equal(a.Unchanged, b.Unchanged)
}

package supervisor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/tend-dev/tend/config"
)

// The Group's side of Spec.DependsOn: it checks the graph, gives each
// member the view of its dependencies that its owner's gate asks
// (dependencies), tells dependents when a dependency changes, and stops
// members in reverse order.

// withDependencies gives cfg the Group's view of its dependencies.
func (g *Group) withDependencies(cfg *settings) {
	if len(cfg.dependsOn) > 0 {
		cfg.deps = &dependencies{list: cfg.dependsOn, status: g.memberStatus}
	}
}

// memberStatus is the named member's Status, and whether it is off:
// disabled, or stopped by the operator (Group.Stop), so that nothing but
// the operator starts it.
func (g *Group) memberStatus(name string) (st Status, off, ok bool) {
	g.mu.RLock()
	m, ok := g.members[name]
	enabled := ok && m.spec.IsEnabled()
	g.mu.RUnlock()
	if !ok {
		return Status{}, false, false
	}
	return m.p.Status(), !enabled || m.held.Load(), true
}

// checkGraph rejects dependencies on agents not in names, and cycles,
// spelling the cycle out: "a -> b -> a".
func checkGraph(deps map[string][]dependency) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		for _, d := range deps[name] {
			if _, ok := deps[d.name]; !ok {
				errs = append(errs, fmt.Errorf("agent %q: %w", name, config.Invalid("depends_on."+d.name, d.name, "no agent of that name in the set")))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if cycle := findCycle(deps); cycle != nil {
		errs = append(errs, fmt.Errorf("agent %q: %w", cycle[0], config.Invalid("depends_on", strings.Join(cycle, " -> "), "is a dependency cycle")))
	}
	return errs
}

// findCycle returns a cycle of the graph (its first name repeated at its
// end), or nil; names are visited in order, so the answer is stable.
func findCycle(deps map[string][]dependency) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(string) []string
	visit = func(n string) []string {
		mark[n] = onPath
		path = append(path, n)
		for _, d := range deps[n] {
			switch mark[d.name] {
			case onPath:
				i := slices.Index(path, d.name)
				return append(slices.Clone(path[i:]), d.name)
			case unseen:
				if c := visit(d.name); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	for _, n := range slices.Sorted(maps.Keys(deps)) {
		if mark[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// neededBy lists the members that depend on name; g.mu must be held.
func (g *Group) neededBy(name string) []string {
	var out []string
	for n, m := range g.members {
		if _, ok := m.spec.DependsOn[name]; ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// changed is called by a member's owner on each of its transitions: its
// dependents are told (reqDependencies) by a goroutine that runs while
// there is news to give, so the owner never waits and no news is lost;
// a burst of changes to one agent is given once.
func (g *Group) changed(name string) {
	g.news.mu.Lock()
	if g.news.pending == nil {
		g.news.pending = map[string]bool{}
	}
	g.news.pending[name] = true
	start := !g.news.draining
	g.news.draining = true
	g.news.mu.Unlock()
	if start {
		go g.tellDependents()
	}
}

// dependencyNews are the members whose change their dependents have not
// been told of yet.
type dependencyNews struct {
	mu       sync.Mutex
	pending  map[string]bool
	draining bool // tellDependents runs
}

func (g *Group) tellDependents() {
	for {
		g.news.mu.Lock()
		if len(g.news.pending) == 0 {
			g.news.draining = false
			g.news.mu.Unlock()
			return
		}
		names := slices.Collect(maps.Keys(g.news.pending))
		clear(g.news.pending)
		g.news.mu.Unlock()
		var tell []*Process
		g.mu.RLock()
		for _, name := range names {
			for _, n := range g.neededBy(name) {
				tell = append(tell, g.members[n].p)
			}
		}
		g.mu.RUnlock()
		for _, p := range tell {
			p.launch(reqDependencies) //nolint:errcheck // a removed member has nothing to start
		}
	}
}

// stopInOrder stops members, each once every member that depends on it
// has stopped (reverse dependency order), independent ones in parallel,
// all under ctx. Errors are joined.
func (g *Group) stopInOrder(ctx context.Context, members []*member) error {
	done := make(map[string]chan struct{}, len(members))
	for _, m := range members {
		done[m.p.name] = make(chan struct{})
	}
	g.mu.RLock()
	after := make(map[string][]string, len(members))
	for _, m := range members {
		after[m.p.name] = g.neededBy(m.p.name)
	}
	g.mu.RUnlock()
	return parallel(members, func(m *member) error {
		defer close(done[m.p.name])
		for _, dependent := range after[m.p.name] {
			if ch, ok := done[dependent]; ok {
				<-ch
			}
		}
		return m.p.Stop(ctx)
	})
}

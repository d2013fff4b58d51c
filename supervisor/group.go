package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/notify"
)

// Errors returned by Group methods; match them with errors.Is.
var (
	// ErrNotFound: no agent of that name in the Group.
	ErrNotFound = errors.New("no such agent")
	// ErrExists: an agent of that name is already in the Group.
	ErrExists = errors.New("agent already exists")
)

// GroupOptions configures a Group. The zero value works: no store, no
// restart budget, the built-in kinds, logs discarded.
type GroupOptions struct {
	// Logger receives the Group's own log lines; members log through their
	// Spec's Logger, or this one when theirs is the zero value.
	Logger logr.Logger
	// Store, when set, receives every member's state after each
	// transition, and what it holds is restored when an agent of the same
	// name is added again (by a later run of the host): an agent the
	// operator stopped with Group.Stop stays stopped (held) until
	// Group.Start or Restart, whatever Apply, Launch or StartAll say, and
	// an agent's Restarts and LastExit (without its tail) carry on. Not
	// restored: the child (it did not outlive the host under tend), the
	// failure streak, the restart window, Status.Run.
	Store Store
	// Budget limits automatic restarts across all members.
	Budget Budget
	// Kinds adds agent types to DefaultKinds, or replaces built-in ones.
	Kinds map[string]Kind
	// Containment says where members' processes are kept: by default a
	// cgroup each where the host may create them, process groups
	// elsewhere.
	Containment Containment
}

// Group is a registry of agents by unique name: it starts, stops and
// reconciles them together, forwards all their events to its subscribers,
// persists their state and shares one restart budget among them. Its
// methods are safe for concurrent use.
type Group struct {
	log   logr.Logger
	store Store
	// restored holds the Store's records of agents not added yet; each
	// is taken by the first member of its name.
	restored map[string]Record
	budget   *budgetClock
	kinds    map[string]Kind
	contain  containment // the members' parent cgroup, if any
	// storeLock holds the FileStore's instance lock (see lockStore).
	storeLock *os.File

	// inherited are the agents a previous binary handed over (see
	// Handover) that no Apply or Add has claimed yet; under mu.
	inherited map[string]*inheritedAgent

	mu      sync.RWMutex
	members map[string]*member
	subs    notify.List[Event]

	applyMu  sync.Mutex     // one Apply at a time
	removals sync.WaitGroup // Launch's removals under way; Close waits for them
	news     dependencyNews // changes the members' dependents are to be told of
}

type member struct {
	p        *Process
	spec     Spec
	gone     chan struct{} // closed once Remove has forgotten it
	attached attachments
	// storeMu orders the member's Store writes against each other and
	// against its removal; members write concurrently, so a Store that
	// batches (FileStore) turns a burst into a few writes.
	storeMu sync.Mutex
	// stored is the time of the last record written for it, so that an
	// older record never overwrites a newer one.
	stored time.Time
	// held: the operator stopped it (Group.Stop); starts by Apply,
	// Launch and StartAll leave it alone. Atomic: read under g.mu, which
	// is taken after storeMu, never before.
	held atomic.Bool
}

// NewGroup returns an empty Group, or an error naming a bad option. Where
// cgroups are available (see Containment) it first opens and locks the
// Group's parent cgroup, failing if another live instance of the same
// host holds it, and kills whatever a crashed instance left there,
// logging each agent's leftovers; where they are not, it logs why, once,
// and kills instead the process groups the Store recorded, each verified
// by PID, start time and executable first. A *FileStore is locked for the
// Group's life (PATH.lock): a second live Group on it fails with
// ErrInstanceRunning.
func NewGroup(opts GroupOptions) (*Group, error) {
	if err := opts.Budget.validate(); err != nil {
		return nil, err
	}
	kinds := DefaultKinds()
	maps.Copy(kinds, opts.Kinds)
	g := &Group{log: opts.Logger, store: opts.Store, budget: newBudgetClock(opts.Budget),
		kinds: kinds, members: map[string]*member{}, restored: map[string]Record{}}
	if g.store != nil {
		records, err := g.store.Load()
		if err != nil {
			return nil, fmt.Errorf("state store: %w", err)
		}
		for _, r := range records {
			g.restored[r.Name] = r
		}
	}
	handed, err := takeInheritance()
	if err != nil {
		g.log.Error(err, "cannot resume what the previous binary handed over; killing its agents")
		abandon(handed)
		handed = nil
	}
	if handed != nil {
		if err := g.takeOver(handed, opts); err != nil {
			return nil, err
		}
		return g, nil
	}
	if g.storeLock, err = lockStore(opts.Store); err != nil {
		return nil, err
	}
	if g.contain, err = contain(opts, g.log); err != nil {
		g.storeLock.Close()
		return nil, err
	}
	if g.contain.parent == nil {
		sweepProcessGroups(g.restored, g.log)
	}
	return g, nil
}

// resolve validates spec the way New does, with the Group's kinds, logger
// and restart budget.
func (g *Group) resolve(spec Spec) (*settings, error) {
	if spec.Logger.GetSink() == nil {
		spec.Logger = g.log
	}
	cfg, err := spec.resolve(g.kinds)
	if err == nil {
		err = g.contain.check(cfg.resources)
	}
	if err != nil {
		return nil, fmt.Errorf("agent %q: %w", spec.Identity(), err)
	}
	if g.budget != nil {
		cfg.restartAt = g.budget.reserve
	}
	g.withDependencies(cfg)
	return cfg, nil
}

// Add validates spec and registers a stopped Process for it, or, for an
// agent a previous binary handed over (see Handover), the Process that
// goes on supervising it as it was. ErrExists if the name is taken; the
// agents it depends on must be members already.
func (g *Group) Add(spec Spec) (*Process, error) {
	cfg, err := g.resolve(spec)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.members[cfg.name]; ok {
		return nil, fmt.Errorf("agent %q: %w", cfg.name, ErrExists)
	}
	for _, d := range cfg.dependsOn {
		if _, ok := g.members[d.name]; !ok {
			return nil, fmt.Errorf("agent %q: %w", cfg.name, config.Invalid("depends_on."+d.name, d.name, "no agent of that name in the Group (add it first)"))
		}
	}
	p, _ := g.attach(cfg, spec)
	return p, nil
}

// attach registers a new Process for cfg, taking over the agent of its
// name a previous binary handed over, if any; g.mu must be held.
func (g *Group) attach(cfg *settings, spec Spec) (*Process, handoverOutcome) {
	p := newFromSettings(cfg)
	p.group, p.tell = &g.subs, g.changed
	p.files.box = g.contain.box(cfg.name)
	m := &member{p: p, spec: spec, gone: make(chan struct{})}
	if r, ok := g.restored[cfg.name]; ok {
		delete(g.restored, cfg.name)
		p.status.Restarts, p.status.RestartsBy, p.status.LastExit, p.status.StartedAt = r.Restarts, r.RestartsBy, r.LastExit, r.StartedAt
		m.held.Store(r.Held)
	}
	g.members[cfg.name] = m
	if g.store != nil {
		p.Subscribe(func(e Event) { g.persist(m, recordOf(e.Status, e.Time)) })
	}
	ia, ok := g.inherited[cfg.name]
	if !ok {
		return p, notHandedOver
	}
	delete(g.inherited, cfg.name)
	m.held.Store(ia.state.Held)
	return p, p.resume(ia)
}

// persist writes r for member m, unless m was removed meanwhile (its
// record must not come back) or a newer record was already written.
func (g *Group) persist(m *member, r Record) {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	g.mu.RLock()
	current := g.members[r.Name] == m
	g.mu.RUnlock()
	if !current || !r.UpdatedAt.After(m.stored) {
		return
	}
	m.stored = r.UpdatedAt
	r.Held = m.held.Load()
	r.Exe = executable(r.PID, r.LeaderStart)
	if err := g.store.Put(r); err != nil {
		g.log.Error(err, "cannot persist agent state", "agent", r.Name)
	}
}

// Remove closes the agent (see Process.Close: it stops, and its
// listeners and stored descriptors are closed), closes its attachments and
// forgets it. If the stop fails the agent stays registered. An agent
// other members depend on is not removed (remove them first, or Apply a
// set without it).
func (g *Group) Remove(ctx context.Context, name string) error {
	g.mu.RLock()
	needed := g.neededBy(name)
	g.mu.RUnlock()
	if len(needed) > 0 {
		return fmt.Errorf("agent %q: needed by %s (depends_on)", name, strings.Join(needed, ", "))
	}
	return g.remove(ctx, name)
}

// remove is Remove without the dependents check: Apply removes
// dependents and their dependencies together.
func (g *Group) remove(ctx context.Context, name string) error {
	m, err := g.member(name)
	if err != nil {
		return err
	}
	if err := m.p.Close(ctx); err != nil {
		return err
	}
	m.attached.closeAll()
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	g.mu.Lock()
	if g.members[name] == m {
		delete(g.members, name)
		close(m.gone)
	}
	g.mu.Unlock()
	if g.store != nil {
		if err := g.store.Delete(name); err != nil {
			g.log.Error(err, "cannot delete agent state", "agent", name)
		}
	}
	return nil
}

// Get returns the agent's Process.
func (g *Group) Get(name string) (*Process, bool) {
	m, err := g.member(name)
	if err != nil {
		return nil, false
	}
	return m.p, true
}

func (g *Group) member(name string) (*member, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m, ok := g.members[name]
	if !ok {
		return nil, fmt.Errorf("agent %q: %w", name, ErrNotFound)
	}
	return m, nil
}

// List returns every member's Status, sorted by name.
func (g *Group) List() []Status {
	out := make([]Status, 0)
	for _, m := range g.snapshot(nil) {
		out = append(out, m.p.Status())
	}
	return out
}

// snapshot returns the members that keep accepts (all with a nil keep),
// sorted by name. keep runs under the lock, so it may read a member's
// spec, which Apply changes.
func (g *Group) snapshot(keep func(*member) bool) []*member {
	g.mu.RLock()
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		if keep == nil || keep(m) {
			ms = append(ms, m)
		}
	}
	g.mu.RUnlock()
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.p.name, b.p.name) })
	return ms
}

// Subscribe calls fn with every member's transitions, tagged by Event.Name,
// in order per agent, with Process.Subscribe's delivery guarantees.
func (g *Group) Subscribe(fn func(Event)) (cancel func()) {
	return g.subs.Add(withMissed(fn), Event.String, g.log)
}

// Start starts the named agent (see Process.Start), releasing it if the
// operator held it stopped.
func (g *Group) Start(ctx context.Context, name string) error {
	return g.withHold(name, false, func(p *Process) error { return p.Start(ctx) })
}

// Stop stops the named agent (see Process.Stop) and holds it stopped: it
// is the operator's decision, which Apply, Launch and StartAll respect
// and, with a Store, a later run of the host too, until Start or Restart.
func (g *Group) Stop(ctx context.Context, name string) error {
	return g.withHold(name, true, func(p *Process) error { return p.Stop(ctx) })
}

// Restart restarts the named agent (see Process.Restart), releasing it
// if the operator held it stopped.
func (g *Group) Restart(ctx context.Context, name string) error {
	return g.withHold(name, false, func(p *Process) error { return p.Restart(ctx) })
}

// Reload reloads the named agent (see Process.Reload).
func (g *Group) Reload(ctx context.Context, name string) error {
	return g.with(name, func(p *Process) error { return p.Reload(ctx) })
}

func (g *Group) with(name string, op func(*Process) error) error {
	m, err := g.member(name)
	if err != nil {
		return err
	}
	return op(m.p)
}

// withHold sets whether the operator holds the agent stopped, records it
// in the Store, then runs op.
func (g *Group) withHold(name string, held bool, op func(*Process) error) error {
	m, err := g.member(name)
	if err != nil {
		return err
	}
	if m.held.Swap(held) != held && g.store != nil {
		g.persist(m, recordOf(m.p.Status(), time.Now()))
	}
	return op(m.p)
}

// StartAll starts every enabled member the operator does not hold stopped
// (see Stop) in parallel, waiting as Start does (a host's main loop uses
// Launch, which does not wait, and WaitReady), and returns the
// failures joined (errors.Join), each naming its agent. Members already
// running count as started.
func (g *Group) StartAll(ctx context.Context) error {
	enabled := g.snapshot(func(m *member) bool { return m.spec.IsEnabled() && !m.held.Load() })
	return parallel(enabled, func(m *member) error {
		if err := m.p.Start(ctx); err != nil && !errors.Is(err, ErrAlreadyStarted) {
			return err
		}
		return nil
	})
}

// StopAll stops every member in parallel under ctx's deadline: each agent
// gets its StopTimeout, cut short so that the SIGKILL, the reap and the
// final Store write still fit before the deadline, and StopAll returns by
// then. Failures are joined. With a Store, every member's final state is
// written before StopAll returns (concurrently, so FileStore writes them
// together), so a host that exits next leaves its last state behind.
func (g *Group) StopAll(ctx context.Context) error {
	if deadline, ok := ctx.Deadline(); ok {
		margin := min(time.Until(deadline)/10, reapMargin)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-margin))
		defer cancel()
	}
	err := g.stopInOrder(ctx, g.snapshot(nil))
	if g.store != nil {
		now := time.Now()
		parallel(g.snapshot(nil), func(m *member) error { //nolint:errcheck // persist logs its failures
			g.persist(m, recordOf(m.p.Status(), now))
			return nil
		})
	}
	return err
}

// Close ends the Group for good: StopAll under ctx, then every member's
// attachments, sockets and stored descriptors are closed, its cgroup and
// the Group's parent cgroup removed, the instance locks (parent cgroup,
// FileStore) released, and no member starts again. A host calls it at
// shutdown; it returns StopAll's error.
func (g *Group) Close(ctx context.Context) error {
	for _, m := range g.snapshot(nil) {
		m.p.setClosed(true)
	}
	err := g.StopAll(ctx)
	g.removals.Wait() // their stops are bounded like StopAll's
	for _, m := range g.snapshot(nil) {
		m.attached.closeAll()
		if cerr := m.p.files.close(); cerr != nil {
			g.log.Error(cerr, "cannot remove an agent's cgroup", "agent", m.p.name)
		}
	}
	if cerr := g.contain.close(); cerr != nil {
		g.log.Error(cerr, "cannot remove the Group's parent cgroup")
	}
	g.dropInherited()
	if g.storeLock != nil {
		g.storeLock.Close()
	}
	return err
}

// reapMargin is the most StopAll keeps of its deadline for SIGKILL, reap
// and the final Store write.
const reapMargin = 500 * time.Millisecond

// parallel runs op for every member at once and joins the errors.
func parallel(members []*member, op func(*member) error) error {
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = op(m)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

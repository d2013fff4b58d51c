package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// ApplyResult says what Apply did, by agent name, each list sorted.
type ApplyResult struct {
	// Added agents were registered (and started, if enabled).
	Added []string
	// Removed agents were stopped and forgotten.
	Removed []string
	// Restarted agents changed something their child is started with
	// (binary, args, env, work dir, credentials, parent-death signal,
	// notify_ready, watchdog) and run anew.
	Restarted []string
	// Updated agents changed only how they are supervised (restart policy,
	// backoff, timeouts, signals, enabled) and kept their child, unless
	// they were disabled.
	Updated []string
	// Unchanged agents were left alone.
	Unchanged []string
	// Resumed agents were handed over by the binary before this one (see
	// Group.Handover) with the contract they have now: their children
	// run on, supervised here.
	Resumed []string
}

// ErrRejected: Apply or Launch refused the whole set of specs (a bad
// spec, a duplicate name) and changed nothing; errors.Is tells it from an
// agent that did not come up (ErrStartFailed).
var ErrRejected = errors.New("config rejected")

// Apply reconciles the Group with the desired set of specs: it adds the
// new agents, removes those no longer listed, restarts those whose child
// would differ, updates the rest in place, and leaves the unchanged alone.
// Every spec is validated first: one bad spec (or a duplicate name) rejects
// the whole Apply and changes nothing (ErrRejected). Writers, loggers and a
// custom Backoff policy are taken over without counting as a change.
//
// The operations run in parallel under ctx, and Apply returns when each
// is done: a started agent Running or Failed (as Start), a removed one
// reaped. Their failures are joined, and the result still lists everything
// that was done. A host's main loop should use Launch, which does not wait.
func (g *Group) Apply(ctx context.Context, specs []Spec) (ApplyResult, error) {
	return g.reconcile(ctx, specs, true)
}

// Launch is Apply that does not wait: it validates every spec (rejecting
// the whole set with ErrRejected, as Apply), registers, updates and hands
// out the starts, restarts and stops, and returns at once with what it
// set in motion. Each agent's outcome is then in its events and Status;
// WaitReady waits for readiness under a deadline when the host wants it.
// A removed agent leaves the Group once it is reaped; an agent re-added
// meanwhile waits for that first.
func (g *Group) Launch(ctx context.Context, specs []Spec) (ApplyResult, error) {
	return g.reconcile(ctx, specs, false)
}

func (g *Group) reconcile(ctx context.Context, specs []Spec, wait bool) (ApplyResult, error) {
	desired := make(map[string]*settings, len(specs))
	bySpec := make(map[string]Spec, len(specs))
	var errs []error
	for _, spec := range specs {
		cfg, err := g.resolve(spec)
		if err == nil {
			if err = checkAttachments(spec.Attach); err != nil {
				err = fmt.Errorf("agent %q: %w", cfg.name, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := desired[cfg.name]; dup {
			errs = append(errs, fmt.Errorf("agent %q: listed twice: %w", cfg.name, ErrExists))
			continue
		}
		desired[cfg.name], bySpec[cfg.name] = cfg, spec
	}
	if len(errs) == 0 {
		graph := make(map[string][]dependency, len(desired))
		for name, cfg := range desired {
			graph[name] = cfg.dependsOn
		}
		errs = checkGraph(graph)
	}
	if len(errs) > 0 {
		return ApplyResult{}, fmt.Errorf("%w, nothing changed: %w", ErrRejected, errors.Join(errs...))
	}

	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if err := g.awaitRemovals(ctx, desired); err != nil {
		return ApplyResult{}, err
	}
	var result ApplyResult
	var ops []func() error
	g.mu.Lock()
	for name, cfg := range desired {
		spec := bySpec[name]
		m, ok := g.members[name]
		if !ok {
			p, handed := g.attach(cfg, spec)
			enabled := spec.IsEnabled() && !g.members[name].held.Load()
			switch {
			case handed == resumedSame:
				result.Resumed = append(result.Resumed, name)
				if !enabled {
					ops = append(ops, pick(wait, func() error { return p.Stop(ctx) }, func() error { return p.launch(reqStop) }))
				}
			case handed == resumedChanged:
				result.Restarted = append(result.Restarted, name)
				ops = append(ops, pick(wait, func() error { return restartWith(ctx, p, cfg, enabled) },
					func() error { return launchRestart(ctx, p, cfg, enabled) }))
			default:
				result.Added = append(result.Added, name)
				if enabled {
					ops = append(ops, pick(wait, func() error { return p.Start(ctx) }, func() error { return p.launch(reqStart) }))
				}
			}
			continue
		}
		old := m.spec
		m.spec = spec
		// A held agent is started by the operator only.
		held := m.held.Load()
		wasEnabled, enabled := old.IsEnabled() && !held, spec.IsEnabled() && !held
		switch {
		case !m.p.settings().contract.equal(cfg.contract):
			result.Restarted = append(result.Restarted, name)
			ops = append(ops, pick(wait, func() error { return restartWith(ctx, m.p, cfg, enabled) },
				func() error { return launchRestart(ctx, m.p, cfg, enabled) }))
		case !sameSupervision(old, spec):
			result.Updated = append(result.Updated, name)
			ops = append(ops, func() error { return updateWith(ctx, m.p, cfg, wasEnabled, enabled, wait) })
		default:
			result.Unchanged = append(result.Unchanged, name)
			ops = append(ops, func() error { return m.p.update(ctx, cfg) })
		}
	}
	for name := range g.members {
		if _, ok := desired[name]; !ok {
			result.Removed = append(result.Removed, name)
			ops = append(ops, pick(wait, func() error { return g.remove(ctx, name) }, func() error { return g.launchRemove(name) }))
		}
	}
	g.mu.Unlock()

	for _, list := range [][]string{result.Added, result.Removed, result.Restarted, result.Updated, result.Unchanged, result.Resumed} {
		slices.Sort(list)
	}
	errs = make([]error, len(ops))
	done := make(chan struct{})
	for i, op := range ops {
		go func() {
			errs[i] = op()
			done <- struct{}{}
		}()
	}
	for range ops {
		<-done
	}
	for name := range desired { // dependencies may have changed: every dependent looks again
		g.changed(name)
	}
	errs = append(errs, g.syncAttachments(desired, bySpec, &result))
	return result, errors.Join(errs...)
}

// syncAttachments brings every desired member's attachments in line with
// its Spec, agents in name order; a member whose only change is there
// counts as Updated.
func (g *Group) syncAttachments(desired map[string]*settings, bySpec map[string]Spec, result *ApplyResult) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		g.mu.RLock()
		m := g.members[name]
		g.mu.RUnlock()
		if m == nil {
			continue
		}
		changed, err := m.attached.sync(m.p, bySpec[name].Attach)
		errs = append(errs, err)
		if i, found := slices.BinarySearch(result.Unchanged, name); changed && found {
			result.Unchanged = slices.Delete(result.Unchanged, i, i+1)
			result.Updated = append(result.Updated, name)
			slices.Sort(result.Updated)
		}
	}
	return errors.Join(errs...)
}

func pick(wait bool, waiting, launching func() error) func() error {
	if wait {
		return waiting
	}
	return launching
}

// awaitRemovals waits for the removal under way of any agent desired
// again, so that the new one does not start beside the old one.
func (g *Group) awaitRemovals(ctx context.Context, desired map[string]*settings) error {
	for name := range desired {
		g.mu.RLock()
		m := g.members[name]
		g.mu.RUnlock()
		if m == nil || !m.p.isClosed() {
			continue
		}
		select {
		case <-m.gone:
		case <-ctx.Done():
			return fmt.Errorf("agent %q: waiting for its removal: %w", name, ctx.Err())
		}
	}
	return nil
}

// launchRestart gives p cfg and has its child replaced (or stopped, if
// disabled) without waiting: the owner stops the old child under the new
// settings and starts the new one once it is reaped.
func launchRestart(ctx context.Context, p *Process, cfg *settings, enabled bool) error {
	if err := p.update(ctx, cfg); err != nil {
		return err
	}
	if !enabled {
		return p.launch(reqStop)
	}
	return p.launch(reqRestart)
}

// launchRemove removes the agent in the background: it is closed to new
// starts at once and leaves the Group once reaped.
func (g *Group) launchRemove(name string) error {
	m, err := g.member(name)
	if err != nil {
		return err
	}
	m.p.setClosed(true)
	g.removals.Go(func() {
		if err := g.remove(context.Background(), name); err != nil {
			g.log.Error(err, "cannot remove agent", "agent", name)
		}
	})
	return nil
}

// restartWith stops p, gives it cfg and starts it again if enabled.
func restartWith(ctx context.Context, p *Process, cfg *settings, enabled bool) error {
	if err := p.Stop(ctx); err != nil {
		return err
	}
	if err := p.update(ctx, cfg); err != nil {
		return err
	}
	if !enabled {
		return nil
	}
	return p.Start(ctx)
}

// updateWith gives p cfg in place, then follows a change of enabled,
// waiting for the start or stop (Apply) or not (Launch).
func updateWith(ctx context.Context, p *Process, cfg *settings, wasEnabled, enabled, wait bool) error {
	if err := p.update(ctx, cfg); err != nil {
		return err
	}
	switch {
	case wasEnabled && !enabled && wait:
		return p.Stop(ctx)
	case wasEnabled && !enabled:
		return p.launch(reqStop)
	case !wasEnabled && enabled && wait:
		if err := p.Start(ctx); err != nil && !errors.Is(err, ErrAlreadyStarted) {
			return err
		}
	case !wasEnabled && enabled:
		return p.launch(reqStart)
	}
	return nil
}

// sameSupervision compares everything of two specs that can come from a
// config file (their JSON form); writers, loggers and Backoff are not.
func sameSupervision(a, b Spec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// WaitReady waits until every named agent (every enabled member when no
// name is given) is Running (a task: Completed), and returns nil. An agent that ends up
// Failed, Exited or Stopped instead fails the wait with its last exit and
// the last line of its crash tail (bind: address already in use ...);
// when ctx ends first, the error names each agent still not ready and
// where it is. Errors are joined, one per agent, each wrapping
// ErrStartFailed (or ErrNotFound for a name not in the Group).
func (g *Group) WaitReady(ctx context.Context, names ...string) error {
	wake := make(chan struct{}, 1)
	defer g.Subscribe(func(Event) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})()
	if len(names) == 0 {
		for _, m := range g.snapshot(func(m *member) bool { return m.spec.IsEnabled() }) {
			names = append(names, m.p.Name())
		}
		slices.Sort(names)
	}
	for {
		var failed, waiting []error
		for _, name := range names {
			p, ok := g.Get(name)
			if !ok {
				failed = append(failed, fmt.Errorf("agent %q: %w", name, ErrNotFound))
				continue
			}
			st := p.Status()
			if st.State == Waiting && st.WaitingFor == "" {
				continue // a scheduled task, armed
			}
			switch st.State {
			case Running, Completed:
			case Failed, Exited, Stopped:
				failed = append(failed, fmt.Errorf("agent %q: %w: %s", name, ErrStartFailed, notReady(st)))
			default:
				where := notReady(st)
				if st.WaitingFor != "" {
					where += " for " + st.WaitingFor
				}
				waiting = append(waiting, fmt.Errorf("agent %q: %w: %s", name, ErrStartFailed, where))
			}
		}
		if len(waiting) == 0 {
			return errors.Join(failed...)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w: %w", ctx.Err(), errors.Join(append(failed, waiting...)...))
		}
	}
}

// notReady says where an agent that is not Running is, and why.
func notReady(st Status) string {
	s := st.State.String()
	if st.LastExit != nil {
		s += " after " + st.LastExit.Cause()
	}
	return s
}

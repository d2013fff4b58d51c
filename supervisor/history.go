package supervisor

import (
	"slices"
	"sync"
)

// HistoryLen is how many of an agent's latest events its Process keeps
// (Process.History): enough to see a crash loop's last rounds, bounded
// so that an agent that flaps for a year costs what one that flapped for
// a minute does. The ring fills as events come, so a quiet agent holds
// only the few it had.
const HistoryLen = 32

// history is a Process's ring of its latest events; the owner adds, any
// goroutine reads.
type history struct {
	mu     sync.Mutex
	events []Event // oldest at next once full
	next   int
}

func (h *history) add(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) < HistoryLen {
		h.events = append(h.events, e)
		return
	}
	h.events[h.next] = e
	h.next = (h.next + 1) % HistoryLen
}

// list returns the events, oldest first.
func (h *history) list() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append(slices.Clone(h.events[h.next:]), h.events[:h.next]...)
}

// History returns the agent's latest events (at most HistoryLen), oldest
// first, with Missed zero: the ring is written by the owner as each
// transition happens and never falls behind. It starts afresh in a
// binary that took the agent over (ReasonHandedOver first).
func (p *Process) History() []Event { return p.history.list() }

// History returns the latest n events of all members together (every
// event each member still holds when n <= 0), oldest first: what
// happened to the Group lately, for a status page.
func (g *Group) History(n int) []Event {
	var all []Event
	for _, m := range g.snapshot(nil) {
		all = append(all, m.p.History()...)
	}
	slices.SortStableFunc(all, func(a, b Event) int { return a.Time.Compare(b.Time) })
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// DroppedEvents counts the events this Process's subscribers lost by
// falling behind (see Subscribe), over its life.
func (p *Process) DroppedEvents() int64 { return p.subs.Dropped() }

// DroppedEvents counts the events the Group's subscribers and its
// members' own subscribers lost by falling behind, over the life of the
// members still in the Group.
func (g *Group) DroppedEvents() int64 {
	n := g.subs.Dropped()
	for _, m := range g.snapshot(nil) {
		n += m.p.DroppedEvents()
	}
	return n
}

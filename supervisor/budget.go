package supervisor

import (
	"sync"
	"time"

	"github.com/tend-dev/tend/config"
)

// Budget limits the automatic restarts of a whole Group: at most Restarts
// of them begin within any window of Per (a sliding window, exactly), so that agents crashing together on one bad
// shared config or a full disk do not fork-bomb the host. An agent whose
// restart would exceed it waits longer in Backoff, with an event of reason
// ReasonRestartBudget. The zero Budget imposes no limit.
type Budget struct {
	// Restarts is how many automatic restarts any window of Per may hold;
	// 0 means no limit.
	Restarts int `json:"restarts,omitempty"`
	// Per is the length of that window. Required with Restarts.
	Per config.Duration `json:"per,omitempty"`
}

func (b Budget) validate() error {
	switch {
	case b.Restarts < 0:
		return config.Invalid("restart_budget.restarts", b.Restarts, "must not be negative")
	case b.Restarts > 0 && b.Per <= 0:
		return config.Invalid("restart_budget.per", b.Per, "must be positive when restarts is set")
	}
	return nil
}

// budgetClock grants automatic restarts so that no window of Per holds
// more than Restarts of them. It remembers the last Restarts grants; a
// restart due at t runs at t, or Per after the oldest remembered grant if
// that is later. Grants never go backwards in time, so that a grant can
// never land in a window that later grants already filled.
type budgetClock struct {
	mu      sync.Mutex
	per     time.Duration
	granted []time.Time // the last Restarts grants, a ring from next
	next    int         // oldest grant once the ring is full
}

func newBudgetClock(b Budget) *budgetClock {
	if b.Restarts == 0 {
		return nil
	}
	return &budgetClock{per: b.Per.Std(), granted: make([]time.Time, 0, b.Restarts)}
}

// reserve books a restart due at due and returns when it may run: due
// itself while the budget lasts, later once it is spent.
func (c *budgetClock) reserve(due time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := due
	if n := len(c.granted); n > 0 {
		newest := c.granted[(c.next+n-1)%n]
		if at.Before(newest) {
			at = newest
		}
	}
	if len(c.granted) < cap(c.granted) {
		c.granted = append(c.granted, at)
		return at
	}
	if free := c.granted[c.next].Add(c.per); at.Before(free) {
		at = free
	}
	c.granted[c.next] = at
	c.next = (c.next + 1) % len(c.granted)
	return at
}

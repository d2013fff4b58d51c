package supervisor

import (
	"sync"
	"time"

	"github.com/tend-dev/tend/config"
)

// Budget limits the automatic restarts of a whole Group: at most Restarts
// within any window of Per, so that agents crashing together on one bad
// shared config or a full disk do not fork-bomb the host. An agent whose
// restart would exceed it waits longer in Backoff, with an event of reason
// ReasonRestartBudget. The zero Budget imposes no limit.
type Budget struct {
	// Restarts is the burst the budget allows; 0 means no limit.
	Restarts int `json:"restarts,omitempty"`
	// Per is the window over which Restarts refill. Required with Restarts.
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

// budgetClock is a generic cell rate algorithm: each restart takes an
// emission interval T = Per/Restarts of virtual time, and a burst of
// Restarts may run ahead of real time by up to Per - T.
type budgetClock struct {
	mu       sync.Mutex
	interval time.Duration // Per / Restarts
	burst    time.Duration // Per - interval
	tat      time.Time     // theoretical arrival time of the next restart
}

func newBudgetClock(b Budget) *budgetClock {
	if b.Restarts == 0 {
		return nil
	}
	interval := b.Per.Std() / time.Duration(b.Restarts)
	return &budgetClock{interval: interval, burst: b.Per.Std() - interval}
}

// reserve books a restart due at due and returns when it may run: due
// itself while the budget lasts, later once it is spent.
func (c *budgetClock) reserve(due time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tat.Before(due) {
		c.tat = due
	}
	allowed := c.tat.Add(-c.burst)
	if allowed.Before(due) {
		allowed = due
	}
	c.tat = c.tat.Add(c.interval)
	return allowed
}

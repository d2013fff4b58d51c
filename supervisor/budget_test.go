package supervisor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// No window of Per holds more than Restarts grants, however the requests
// arrive: all at once (where a rate limiter lets a burst and then a refill
// through, almost twice the bound), or scattered.
func TestBudgetHoldsItsWindow(t *testing.T) {
	const restarts, per = 30, 10 * time.Second
	base := time.Unix(1_000_000, 0)
	patterns := map[string]func(i int, r *rand.Rand) time.Duration{
		"all at once": func(int, *rand.Rand) time.Duration { return 0 },
		"storm":       func(i int, _ *rand.Rand) time.Duration { return time.Duration(i) * 50 * time.Millisecond },
		"random": func(i int, r *rand.Rand) time.Duration {
			return time.Duration(i)*200*time.Millisecond + time.Duration(r.Int64N(int64(5*time.Second)))
		},
	}
	for name, dueAt := range patterns {
		t.Run(name, func(t *testing.T) {
			c := newBudgetClock(Budget{Restarts: restarts, Per: config.Duration(per)})
			r := rand.New(rand.NewPCG(1, 2))
			var grants []time.Time
			for i := range 500 {
				due := base.Add(dueAt(i, r))
				at := c.reserve(due)
				if at.Before(due) {
					t.Fatalf("request %d due %v granted earlier, at %v", i, due, at)
				}
				grants = append(grants, at)
			}
			for i, g := range grants {
				in := 0
				for _, h := range grants {
					if !h.Before(g) && h.Before(g.Add(per)) {
						in++
					}
				}
				if in > restarts {
					t.Fatalf("%d restarts in the window of %v from grant %d; the budget allows %d", in, per, i, restarts)
				}
			}
			if name == "all at once" && !grants[restarts-1].Equal(base) {
				t.Fatalf("the first %d restarts were not granted at once: the last of them at %v", restarts, grants[restarts-1])
			}
		})
	}
}

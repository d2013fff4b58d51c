package supervisor

import "iter"

// RestartCounts counts an agent's restarts by what caused them, over the
// Process's life (and across host restarts with a Group's Store). The
// first three are the automatic restarts Status.Restarts sums; the last
// two are restarts tend was asked for, directly or through a dependency.
type RestartCounts struct {
	// Crash counts automatic restarts after an exit nobody asked for:
	// a crash, a failed spawn, a missed watchdog, a reload or task that
	// failed or overran.
	Crash int `json:"crash,omitempty"`
	// Unhealthy counts automatic restarts after a health verdict
	// (Process.Unhealthy).
	Unhealthy int `json:"unhealthy,omitempty"`
	// OOM counts automatic restarts after the OOM killer struck at the
	// agent's memory_max.
	OOM int `json:"oom,omitempty"`
	// Requested counts Restart calls that stopped a live child and
	// started the next one.
	Requested int `json:"requested,omitempty"`
	// Dependency counts restarts with a dependency (PropagateRestart):
	// stopped with it, to start again once its condition holds.
	Dependency int `json:"dependency,omitempty"`
}

// restartCause names one counter of RestartCounts; "" is none.
type restartCause string

const (
	causeCrash      restartCause = "crash"
	causeUnhealthy  restartCause = "unhealthy"
	causeOOM        restartCause = "oom"
	causeRequested  restartCause = "requested"
	causeDependency restartCause = "dependency"
)

// causeOf is the cause of an automatic restart after an exit of reason.
func causeOf(reason Reason) restartCause {
	switch reason {
	case ReasonUnhealthy:
		return causeUnhealthy
	case ReasonOOMKilled:
		return causeOOM
	default:
		return causeCrash
	}
}

// causes is every cause with its counter, in the order All yields them:
// the one table All and add read.
var causes = [...]struct {
	cause   restartCause
	counter func(*RestartCounts) *int
}{
	{causeCrash, func(c *RestartCounts) *int { return &c.Crash }},
	{causeUnhealthy, func(c *RestartCounts) *int { return &c.Unhealthy }},
	{causeOOM, func(c *RestartCounts) *int { return &c.OOM }},
	{causeRequested, func(c *RestartCounts) *int { return &c.Requested }},
	{causeDependency, func(c *RestartCounts) *int { return &c.Dependency }},
}

// All yields each cause ("crash", "unhealthy", "oom", "requested",
// "dependency") with its count, zero counts included, always in that
// order: the label values a metrics exporter needs, and no others.
func (c RestartCounts) All() iter.Seq2[string, int] {
	return func(yield func(string, int) bool) {
		for _, x := range causes {
			if !yield(string(x.cause), *x.counter(&c)) {
				return
			}
		}
	}
}

// add counts one restart of cause; "" counts nothing.
func (c *RestartCounts) add(cause restartCause) {
	for _, x := range causes {
		if x.cause == cause {
			*x.counter(c)++
		}
	}
}

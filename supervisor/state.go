package supervisor

import (
	"encoding/json"
	"fmt"
)

// State is where a Process is in its lifecycle:
//
//	Stopped --Start--> Starting --alive StartSeconds--> Running
//	Starting, Running --exit, restart due--> Backoff --delay--> Starting
//	Starting, Running --exit, no restart--> Exited
//	Starting, Running --Stop--> Stopping --reaped--> Stopped
//	Backoff --restart limit, prevent code, spawn error on Start--> Failed
//	Failed --RetryFailedAfter--> Backoff
//	Stopped, Backoff --dependencies not met (Spec.DependsOn)--> Waiting
//	Waiting --dependencies met--> Starting
//	Stopped --Start of a scheduled task--> Waiting --due--> Starting
//	Starting --a task exits with success--> Completed
type State int

// The states. Stopped is the zero value.
const (
	Stopped   State = iota // initial, or after a requested stop
	Starting               // spawned; start criterion not yet met
	Running                // start criterion met
	Stopping               // stop escalation under way
	Backoff                // died unrequested; restart scheduled
	Exited                 // died, and the policy says no restart
	Failed                 // gave up: restart limit, prevent code or spawn error
	Waiting                // held back until its dependencies hold, or a scheduled task's next run
	Completed              // a task's run exited with success
)

var stateNames = [...]string{"stopped", "starting", "running", "stopping", "backoff", "exited", "failed", "waiting", "completed"}

// String returns the lower-case name, e.g. "running".
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// Active reports whether a child exists or is scheduled: Starting, Running,
// Stopping, Backoff.
func (s State) Active() bool {
	return s == Starting || s == Running || s == Stopping || s == Backoff
}

// MarshalJSON writes the state's name.
func (s State) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a state's name.
func (s *State) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("state %s: want a name such as \"running\"", b)
	}
	for i, n := range stateNames {
		if n == name {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("state %q: unknown", name)
}

// hasChild reports whether an agent in state s has a child: Starting,
// Running or Stopping.
func (s State) hasChild() bool { return s == Starting || s == Running || s == Stopping }

// States returns every State in order, Stopped first: the values a
// per-state metric or a status page's legend enumerates.
func States() []State {
	all := make([]State, len(stateNames))
	for i := range all {
		all[i] = State(i)
	}
	return all
}

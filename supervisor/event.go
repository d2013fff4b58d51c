package supervisor

import (
	"fmt"
	"time"
)

// Reason says why a transition happened.
type Reason string

// The reasons a Process changes state.
const (
	ReasonStartRequested   Reason = "start requested"
	ReasonRestartRequested Reason = "restart requested"
	ReasonStopRequested    Reason = "stop requested"
	ReasonReady            Reason = "ready"             // alive StartSeconds
	ReasonStopped          Reason = "stopped"           // reaped after a requested stop
	ReasonExited           Reason = "exited"            // died without being asked to
	ReasonSpawnFailed      Reason = "spawn failed"      // exec failed
	ReasonBackoffElapsed   Reason = "backoff elapsed"   // restart delay over
	ReasonRestartLimit     Reason = "restart limit"     // MaxRestarts within RestartWindow
	ReasonPreventExitCode  Reason = "prevent exit code" // exit code in PreventExitCodes
	ReasonRetryFailed      Reason = "retry after failure"
	ReasonRestartBudget    Reason = "restart budget exhausted" // a Group delays the restart
	ReasonAgentStopping    Reason = "agent stopping"           // it sent STOPPING=1
	ReasonAgentStopped     Reason = "agent stopped"            // exited cleanly after STOPPING=1
	ReasonReloadFailed     Reason = "reload failed"            // died of its reload signal or during a reload
	ReasonUnhealthy        Reason = "unhealthy"                // stopped on a health verdict (Process.Unhealthy)
	ReasonOOMKilled        Reason = "oom-killed"               // the OOM killer struck at its memory_max
	ReasonHealthy          Reason = "healthy"                  // its run was reported healthy (Process.Healthy)

	ReasonWaitingForDependencies Reason = "waiting for dependencies" // Status.WaitingFor says which
	ReasonDependenciesMet        Reason = "dependencies met"
	ReasonDependencyRestarted    Reason = "dependency restarted" // PropagateRestart: stopped with its dependency
	ReasonDependencyDown         Reason = "dependency down"      // PropagateStop: stopped while its dependency is down

	ReasonCompleted   Reason = "completed"    // a task exited with success
	ReasonTaskTimeout Reason = "task timeout" // a task ran past TaskSpec.Timeout and was killed
	ReasonScheduled   Reason = "scheduled"    // a scheduled task waits for its next run (Status.NextRunAt)
	ReasonScheduleDue Reason = "schedule due" // a scheduled run began
	ReasonMissedRun   Reason = "missed run"   // a run due while the host was down began at once
)

// Event is one state transition of one Process.
type Event struct {
	// Name is the agent's name.
	Name string
	From State // the state before
	To   State // the state after
	// Reason says why; the exit behind it, if any, is Status.LastExit.
	Reason Reason
	// Status is the snapshot right after the transition.
	Status Status
	// Exits holds the recent exits that exhausted the restart limit, on the
	// transition to Failed for ReasonRestartLimit; nil otherwise.
	Exits []Exit
	// Time is when the transition happened.
	Time time.Time
	// Missed counts the events this subscriber lost just before this one
	// because it fell behind (see Process.Subscribe).
	Missed int
}

// String formats the event as `agent "x": running -> backoff (exited: exit code 1)`.
func (e Event) String() string {
	s := fmt.Sprintf("agent %q: %s -> %s (%s", e.Name, e.From, e.To, e.Reason)
	if x := e.Exit(); x != nil {
		s += ": " + x.String()
	}
	return s + ")"
}

// Exit is the exit this transition reports: the end of a child (out of
// Starting, Running or Stopping into any other state) or a failed spawn;
// nil for every other transition, whose Status.LastExit is older.
func (e Event) Exit() *Exit {
	if e.To.hasChild() || !e.From.hasChild() && e.Reason != ReasonSpawnFailed {
		return nil
	}
	return e.Status.LastExit
}

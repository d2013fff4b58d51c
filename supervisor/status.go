package supervisor

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Status is a snapshot of a Process, a plain value safe to keep, compare
// (go-cmp) and marshal to JSON.
type Status struct {
	Name  string `json:"name"`  // the agent's name
	State State  `json:"state"` // where it is in its lifecycle
	// PID of the current child; 0 when none runs.
	PID int `json:"pid,omitempty"`
	// StartedAt is when the current (or last) child was spawned.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Restarts counts automatic restarts over the Process's life: after
	// crashes, health verdicts and OOM kills alike (RestartsBy tells them
	// apart, and counts the requested ones too).
	Restarts int `json:"restarts"`
	// RestartsBy counts restarts by cause.
	RestartsBy RestartCounts `json:"restarts_by,omitzero"`
	// Streak counts consecutive failed runs; it is what the backoff policy
	// gets as n, and it clears after a run of ResetAfter.
	Streak int `json:"streak"`
	// LastExit describes the last child's end; nil before the first.
	LastExit *Exit `json:"last_exit,omitempty"`
	// NextRestartAt is when Backoff (or Failed, with a retry pending) ends.
	NextRestartAt time.Time `json:"next_restart_at,omitzero"`
	// NotifyStatus is the latest STATUS= text the current child sent over
	// its notify socket (with NotifyReady); empty before it says any, and
	// again for each new child.
	NotifyStatus string `json:"notify_status,omitempty"`
	// Run numbers the children of this Process from 1: the current or
	// last one. A verdict on a run (Unhealthy) acts only while it is the
	// current one.
	Run uint64 `json:"run,omitempty"`
	// Reloading is true while the child reloads: from its RELOADING=1 to
	// its next READY=1 (with NotifyReady).
	Reloading bool `json:"reloading,omitempty"`
	// LeaderStart is when the current child's main process started, in
	// clock ticks after boot (/proc/PID/stat): with PID it names that
	// process and no later one given the same PID. 0 when none runs, or
	// outside Linux.
	LeaderStart uint64 `json:"leader_start,omitempty"`
	// Boundary is what holds the current (or last) child's processes:
	// "cgroup /sys/fs/cgroup/.../run-3" or "process group 1234".
	Boundary string `json:"boundary,omitempty"`
	// Limits are the agent's resource limits in force (zero: none).
	Limits Resources `json:"limits,omitzero"`
	// WaitingFor says, while Waiting for dependencies, which of them do
	// not hold yet and where each is: "collector (ready): starting".
	WaitingFor string `json:"waiting_for,omitempty"`
	// NextRunAt is when a scheduled task's next run is due (jitter
	// included); zero when none is armed.
	NextRunAt time.Time `json:"next_run_at,omitzero"`
	// StateSince is when the agent entered State (a transition to the
	// same state, such as Running's ReasonHealthy, does not move it).
	StateSince time.Time `json:"state_since,omitzero"`
	// InBackoff is how long the agent has spent in Backoff over its
	// life, up to its last transition: add the time since StateSince
	// while State is Backoff.
	InBackoff time.Duration `json:"in_backoff,omitempty"`
	// Healthy is true once the current run was reported healthy
	// (Process.Healthy); a new run starts unproven.
	Healthy bool `json:"healthy,omitempty"`
}

// Exit describes how a child ended.
type Exit struct {
	// Code is the exit status, or -1 when a signal ended the child or it
	// never started.
	Code int `json:"code"`
	// Signal ended the child, if any.
	Signal Signal `json:"signal,omitempty"`
	// CoreDumped is true when the signal left a core dump.
	CoreDumped bool `json:"core_dumped,omitempty"`
	// Requested is true when tend stopped the child (Stop, Restart).
	Requested bool `json:"requested,omitempty"`
	// Err is why the child could not be started, or another failure beside
	// the exit status.
	Err string `json:"error,omitempty"`
	// Time is when the child was reaped.
	Time time.Time `json:"time"`
	// Ran is how long the child lived.
	Ran time.Duration `json:"ran"`
	// Errno is the error number the child reported with ERRNO= before it
	// ended (with NotifyReady); 0 if none.
	Errno int `json:"errno,omitempty"`
	// ExitStatus is the status the child reported with EXIT_STATUS= (with
	// NotifyReady), nil if none: a service's own account of why it ends,
	// beside Code.
	ExitStatus *int `json:"exit_status,omitempty"`
	// OOMKilled is true when the kernel's OOM killer killed a process of
	// the child's tree because the agent reached its memory_max (a
	// contained agent only: its cgroup counts the kills).
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Leftovers is how many processes of the child's tree were still
	// running when its main process ended (a daemonizing agent, a
	// detached worker): tend killed them, as systemd's
	// KillMode=control-group does (a contained agent only).
	Leftovers int `json:"leftovers,omitempty"`
	// Tail is the end of the child's piped output (see Spec.TailBytes):
	// usually why it died.
	Tail string `json:"tail,omitempty"`
}

// success reports whether the exit counts as success: exit 0 or one of the
// spec's success codes, and not a signal.
func (e *Exit) success(codes []int) bool {
	if e.Signal != 0 || e.Err != "" || e.Code < 0 {
		return false
	}
	return e.Code == 0 || slices.Contains(codes, e.Code)
}

// Cause is the exit with the last line of its crash tail, which usually
// says why: "exit code 1: listen tcp :9100: bind: address already in use".
func (e *Exit) Cause() string {
	line := strings.TrimRight(e.Tail, "\n")
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	if line = strings.TrimSpace(line); line == "" {
		return e.String()
	}
	return e.String() + ": " + line
}

// String summarises the exit: "exit code 3", "killed by SIGKILL",
// "spawn: ...", "killed by SIGKILL (OOM killer, memory_max reached)",
// with "; 2 leftover processes killed" when the tree outlived it.
func (e *Exit) String() string {
	s := e.status()
	if e.OOMKilled {
		s += " (OOM killer, memory_max reached)"
	}
	if e.Leftovers > 0 {
		s += "; " + strconv.Itoa(e.Leftovers) + " leftover processes killed"
	}
	return s
}

func (e *Exit) status() string {
	switch {
	case e.Err != "" && e.Signal != 0:
		return e.Err + " (killed by " + e.Signal.String() + ")"
	case e.Err != "":
		return e.Err
	case e.Signal != 0:
		s := "killed by " + e.Signal.String()
		if e.CoreDumped {
			s += " (core dumped)"
		}
		return s
	default:
		return "exit code " + strconv.Itoa(e.Code)
	}
}

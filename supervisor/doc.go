// Package supervisor runs agents as child processes and keeps them running.
//
// A Process supervises one agent described by a Spec. Its semantics, in the
// order they matter:
//
// Start spawns the binary directly (no shell) in a process group of its own,
// with an explicit environment, stdin on /dev/null, and stdout/stderr to the
// Spec's writers. The child counts as started (Running) once it has stayed
// alive for StartSeconds, or, with a Ready probe, once the probe passes, or,
// with NotifyReady, once a process of its group sends READY=1 to the
// private NOTIFY_SOCKET it is given, the systemd way (a child not ready
// within StartTimeout is killed and counts as a failed run); Start returns
// then, or with the reason it could not get there. With a Watchdog, a
// Running child that stops sending WATCHDOG=1 over that socket is killed
// and restarted like one that crashed; STATUS= shows in the Status, and
// WATCHDOG=trigger kills the child as a missed watchdog does (see
// Spec.NotifyReady for the keys understood and the senders heard).
//
// Exit detection is event-driven: the child's pidfd is parked in Go's
// netpoller, so an idle agent costs no OS thread, no ticker and no CPU.
// When the main process exits, whatever is left of its process group is
// SIGKILLed before the leader is reaped (while the group ID cannot be
// recycled), and the next child starts only once no live member remains,
// so no orphan holds the agent's port or files.
//
// The restart decision follows systemd's order: a requested stop is never
// restarted; an exit code in PreventExitCodes moves to Failed; then the
// policy (always, on-failure, never) decides. Every unrequested exit, during
// Starting or Running, extends the failure streak n. The first restart of a
// streak is immediate, restart k waits Backoff.Delay(k-1) from the reap, and
// a run that stays Running for ResetAfter clears the streak. More than
// MaxRestarts automatic restarts within RestartWindow move to Failed;
// RetryFailedAfter later the agent tries again with its counters cleared.
//
// Stop sends StopSignal and SIGCONT to the whole group, waits StopTimeout
// (never longer than the caller's context allows), then SIGKILLs the group,
// and returns once the child is reaped and its group is empty.
//
// Every state change is an Event, delivered in order to each subscriber on a
// goroutine of its own (see Process.Subscribe for what happens when one
// falls behind). Status returns a snapshot at any time.
//
// A Group keeps many Processes by unique name. It starts and stops them in
// parallel (StopAll fits every agent's SIGKILL and reap inside one
// deadline), forwards all their events to its subscribers, writes every
// transition to an optional Store, shares one restart Budget among them so
// that agents failing together cannot fork-bomb the host, and Apply
// reconciles it with a desired set of Specs: it restarts only the agents
// whose child would differ and rejects the whole set if one Spec is bad.
//
// Specs decode from the YAML or JSON users already write (binary_path,
// work_dir, restart: {policy, max_retries, backoff_base, backoff_max}), and
// embed in a host's own per-agent struct beside keys tend does not know.
//
// tend never installs signal handlers, never waits on a PID it did not
// start, and ends every goroutine it starts once the Process is idle.
package supervisor

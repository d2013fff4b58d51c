// Package supervisor runs agents as child processes and keeps them running.
//
// A Process supervises one agent described by a Spec. Its semantics, in the
// order they matter:
//
// Start spawns the binary directly (no shell) in a process group of its
// own (and, in a Group, a cgroup of its own; see Containment), with an
// explicit environment, stdin on /dev/null, and stdout/stderr to the
// Spec's writers. The child counts as started (Running) once it has stayed
// alive for StartSeconds, or, with a Ready probe, once the probe passes, or,
// with NotifyReady, once a process of the agent sends READY=1 to the
// private NOTIFY_SOCKET it is given, the systemd way (a child not ready
// within StartTimeout is killed and counts as a failed run); Start returns
// then, or with the reason it could not get there.
//
// # The service protocol
//
// An agent with NotifyReady speaks systemd's sd_notify(3) protocol over
// its NOTIFY_SOCKET, as redis (--supervised systemd), haproxy (-Ws),
// PostgreSQL and anything on libsystemd or go-systemd do. tend reads the
// socket for the child's whole life as messages arrive, so an agent never
// blocks in sd_notify. The keys understood:
//
//   - READY=1: the child is Running (the start criterion). After
//     RELOADING=1 it ends the reload.
//
//   - STATUS=text: the latest text is Status.NotifyStatus.
//
//   - RELOADING=1 (with MONOTONIC_USEC=): the child is reloading
//     (Status.Reloading) until its next READY=1; with ReloadByNotify this
//     is how Reload learns the reload is done. A RELOADING=1 whose
//     MONOTONIC_USEC= is older than the reload signal is a stale one.
//
//   - STOPPING=1: the child is stopping on its own: it is Stopping
//     (ReasonAgentStopping) and is killed if still alive after
//     StopTimeout; a clean exit then is ReasonAgentStopped and not
//     restarted, whatever the policy (systemd would restart it under
//     Restart=always; tend takes it as the agent's own decision).
//
//   - EXTEND_TIMEOUT_USEC=n: the timeout in force (the start timeout, a
//     notify reload's, or the stop timeout after STOPPING=1) ends no
//     sooner than n µs from the message.
//
//   - WATCHDOG=1: a keep-alive (see Spec.Watchdog). WATCHDOG=trigger: the
//     child is killed as for a missed keep-alive, watchdog or not.
//     WATCHDOG_USEC=n: the running child's watchdog period is now n µs
//     (0 turns it off), counted from its last keep-alive.
//
//   - ERRNO=n and EXIT_STATUS=n: reported on the child's Exit (Errno,
//     ExitStatus).
//
//   - FDSTORE=1 with passed descriptors and FDNAME=name: parked with tend,
//     up to FDStoreMax, handed to the agent's next children as LISTEN_FDS
//     after its Listen sockets; a descriptor already stored is not kept
//     twice. FDSTOREREMOVE=1 with FDNAME=name closes them.
//
//   - BARRIER=1: its descriptor is closed once the message is read, so
//     systemd-notify returns at once. Other passed descriptors are closed
//     too, as are those of a message that is not accepted.
//
//   - MAINPID=pid: a live process of the agent (its cgroup leaf, or its
//     process group without one) becomes its main
//     process (Status.PID): Signal and Reload go to it, the leader's exit
//     ends nothing, and the new main process's end is the child's exit.
//     Not being tend's child, its exit status is known only where the
//     kernel keeps it for pidfds (Linux 6.15+) and whoever adopted it (init,
//     or a host that is a subreaper) reaps it within a second; otherwise
//     the Exit says the status is unknown. A PID outside the agent is
//     ignored.
//
// Unknown keys are ignored, as systemd does.
//
// Senders accepted (systemd's NotifyAccess=all, within the agent's
// boundary): the main process, whether or not it has exited by the time
// its message is read (its PID stays reserved until tend reaps it, and
// the socket is drained before the exit is handled), and any other
// process of its cgroup leaf (of its process group without one) that is
// alive when its message is read
// (checked through /proc, with a pidfd held across the check so that a
// recycled PID cannot pass for it). A message from anyone else, or from a
// descendant already reaped by its own parent (systemd-notify --no-block
// run from a shell without exec), is dropped: its membership can no longer
// be checked. systemd-notify without --no-block waits for the message to
// be read and is always heard.
//
// Reload is done by ReloadMode: a signal, a signal confirmed by
// RELOADING=1 and READY=1, a restart, or not at all. Listen sockets are
// bound by tend once per agent and handed to each child as LISTEN_FDS
// (sd_listen_fds(3)): clients queue across restarts instead of being
// refused, and no leftover of a previous child can hold the port.
//
// Exit detection is event-driven: the child's pidfd is parked in Go's
// netpoller, so an idle agent costs no OS thread, no ticker and no CPU.
// When the main process exits, whatever is left of the agent is killed
// and the next child starts only once none of it runs, so no orphan holds
// the agent's port or files. What "the agent" is depends on its boundary.
//
// # Containment
//
// A Group's member, where the host may create cgroups (Linux with a cgroup
// v2 hierarchy, as root or in a delegated subtree), lives in a cgroup of its
// own under a parent cgroup unique to the host instance (GroupOptions
// Containment: "tend.NAME" below the host's own cgroup), and each child in
// a leaf of it (a fresh one after a kill), cloned straight into it (clone3
// CLONE_INTO_CGROUP):
// nothing the agent forks can leave it, setsid'd, double-forked or
// daemonized. When the main process ends, the rest of the leaf is
// SIGKILLed at once (cgroup.kill; systemd's KillMode=control-group) and
// Exit.Leftovers counts what was left; the agent is gone when the leaf is
// empty (cgroup.events). A Stop's StopSignal still goes to the process
// group, its SIGKILL to the whole leaf. Resources (memory_max,
// memory_high, cpu, pids_max) are limits on the whole tree, applied before
// the child runs and changed in place by Apply; an OOM kill is reported
// (Exit.OOMKilled, ReasonOOMKilled); Process.TreeUsage reads the tree's
// CPU, memory and process count from the cgroup. On hybrid machines, whose
// controllers are v1 hierarchies, the v2 hierarchy tracks the processes
// and an agent joins the v1 memory, pids or cpu hierarchy for the limits
// it sets. NewGroup kills whatever a crashed instance of the same host
// left in its parent before anything starts, so no probe is answered by a
// leftover; the parent is locked, so a second live instance is refused
// (ErrInstanceRunning). A host that is itself a systemd service needs
// Delegate=yes (its cgroup is then its own to divide; with the default
// KillMode=control-group, stopping the service also kills every agent,
// which is what an orderly shutdown does anyway); in a container, the
// host's cgroup is the container's, and cgroups are used where /sys/fs/cgroup
// is mounted writable (NewGroup logs why not otherwise).
//
// Elsewhere (no cgroups, Containment.Disabled, a Process made by New) the
// boundary is the process group: what is left of it when the main process
// exits is SIGKILLed before the leader is reaped (while the group ID
// cannot be recycled), and the next child waits until no live member
// remains. Descendants that leave the group (setsid, a daemon's double
// fork) are out of reach there; after a host crash, the next Group with
// the same *FileStore kills the process groups it recorded, each verified
// by PID, start time and executable first. ParentDeathSignal kills the
// direct child with its host in either case.
//
// The restart decision follows systemd's order: a requested stop is never
// restarted; an exit code in PreventExitCodes moves to Failed; then the
// policy (always, on-failure, never) decides. Every unrequested exit, during
// Starting or Running, extends the failure streak n. The first restart of a
// streak is immediate (or waits RestartSpec.FirstDelay, systemd's
// RestartSec), restart k waits Backoff.Delay(k-1) from the reap, and
// a run that stays Running for ResetAfter clears the streak. More than
// MaxRestarts automatic restarts within RestartWindow move to Failed;
// RetryFailedAfter later the agent tries again with its counters cleared.
//
// Stop sends StopSignal and SIGCONT to the whole group, waits StopTimeout
// (never longer than the caller's context allows), then SIGKILLs the group
// (or the whole cgroup leaf), and returns once the child is reaped and
// nothing of it is left.
//
// Every state change is an Event, delivered in order to each subscriber on a
// goroutine of its own (see Process.Subscribe for what happens when one
// falls behind), kept in the agent's bounded History, and logged once
// through the Spec's Logger at the level it deserves: Failed an error, an
// exit nobody asked for a warning (a real slog.LevelWarn for a logger made
// with logr.FromSlogHandler), the rest info. Status returns a snapshot at
// any time, with the restarts counted by cause (RestartsBy) and the time
// spent in Backoff; package metrics exports it all to Prometheus.
//
// A Group keeps many Processes by unique name. It starts and stops them in
// parallel (StopAll fits every agent's SIGKILL and reap inside one
// deadline), forwards all their events to its subscribers, writes every
// transition to an optional Store, shares one restart Budget among them so
// that agents failing together cannot fork-bomb the host, and Apply
// reconciles it with a desired set of Specs: it restarts only the agents
// whose child would differ and rejects the whole set if one Spec is bad
// (ErrRejected). Launch does the same without waiting for the agents to
// come up, for a host's main loop, and WaitReady waits for them under a
// deadline. With a Store, an agent the operator stopped (Group.Stop) stays
// stopped across restarts of the host. What the host keeps per agent
// (Spec.Attach: a health checker, a heartbeat server) is opened, rebuilt
// and closed with the agent; Close ends it all at shutdown.
//
// # Tasks, dependencies and schedules
//
// A Spec with Task set is a task: a program whose successful exit is its
// goal (systemd's Type=oneshot). It is Starting while it runs, Completed
// once it exits with success, and Start returns nil then; a failed run
// goes through the restart policy (on-failure unless set; always is
// refused), the backoff and the restart limit as a crash does, and
// TaskSpec.Timeout kills a run that takes too long. With
// TaskSpec.Schedule (cron syntax or "@every 5m") Start arms the schedule
// and returns; each due run starts the task, a run due while the last
// one (or its retries) is under way is skipped, so runs never overlap,
// jitter spreads a fleet, Restart runs it now and Stop disarms it. While
// idle a scheduled task costs one runtime timer and no goroutine. With a
// Group's Store a run that came due while the host was down runs once at
// the next Start.
//
// A Group's member may depend on others (Spec.DependsOn): each dependency
// names a condition (started, ready, healthy, completed,
// completed_successfully) that must hold before the member starts, and
// what the dependency going down does to it (Propagation: nothing,
// restart with it as Erlang's rest_for_one, or stop while it is down for
// good as systemd's BindsTo=). Every start of the member (Start, an
// automatic restart, a scheduled run) passes the same gate: until the
// conditions hold the member is Waiting, Status.WaitingFor naming each
// dependency not met and where it is; a dependency that cannot come up
// by itself (Failed, Exited, disabled) fails the Start callers with that
// reason, and the member still waits, so it starts when the dependency
// is fixed. The gate is asked again whenever a dependency changes state,
// so StartAll and Apply start agents in dependency order, independent
// ones in parallel, with no ordering pass of their own; StopAll stops
// them in reverse order under its one deadline. Unknown names,
// self-dependencies and cycles ("a -> b -> a") reject the whole Apply;
// Add wants the dependencies added first and Remove refuses an agent
// others need. Dependencies and schedules are supervision, not the
// child's contract: Apply changes them in place, restarting nothing.
//
// # Hand-over across exec
//
// Group.Handover upgrades the host without restarting its agents, as
// systemd's daemon-reexec does for itself: execve keeps the PID, so the
// agents stay the host's children, and what crosses is tend's state. The
// call pauses every member (no decision is taken; an exit waits unreaped
// in the kernel, output in its pipe, sd_notify messages in their socket),
// hands every event already emitted to its subscribers, writes a
// versioned description of the Group into a memory file, makes every
// descriptor that must survive inheritable (pidfds, output pipes, notify
// sockets, Listen sockets and stored descriptors, the instance locks, and
// Exec.Files) and execs the new binary. It returns only if it failed,
// with supervision going on as before.
//
// In the new binary the package reads the state before the host's code
// runs and closes every descriptor it names to further execs. The first
// NewGroup takes it over: no sweep (what runs is the host's own), the
// containment handed over (whatever its options say), every child
// verified (this process's child, same start time, same executable, its
// descriptors present) and what fails killed with ReasonHandoverRejected.
// The host's Apply (or Launch, or Add) then claims each agent by name:
// ReasonHandedOver is its first event, with the state it had (From and To
// alike), its counters, restart times and deadlines (as absolute times)
// intact and its output and events continuing where they stopped, the
// partial line of a writer with TakePartial (logs.Stream) first; an agent
// whose contract changed is restarted, one no longer listed removed. An
// exit that came during the hand-over is reported once, afterwards. A
// state of another version is not trusted at all: its agents are killed
// and reaped and start anew (InheritedFile still works). If the new binary
// dies before it resumes, the next start of the host cleans up as after a
// crash (see Containment).
//
// Health verdicts are the supervisor's: Unhealthy(run, reason) stops a
// Running child of that run and its exit goes through the restart
// decision like a crash; Healthy(run) marks a run proven healthy (what a
// dependency's healthy condition waits for); health.Subject{Run:
// p.CurrentRun, Unhealthy: p.Unhealthy, Healthy: p.Healthy} wires a
// health.Checker to both.
//
// Specs decode from the YAML or JSON users already write (binary_path,
// work_dir, restart: {policy, max_retries, backoff_base, backoff_max}), and
// embed in a host's own per-agent struct beside keys tend does not know.
//
// tend never installs signal handlers, never waits on a PID it did not
// start, and ends every goroutine it starts once the Process is idle. Its
// only process-wide state is what a previous binary handed over, read at
// init from TEND_HANDOVER (removed from the environment at once).
package supervisor

package supervisor

import (
	"fmt"
	"syscall"
	"time"
)

// spawned is what the owner goroutine holds of a child it started. The
// settings' spawn function makes it; tests of the timing logic substitute
// children that are not processes.
type spawned struct {
	pid         int
	leaderStart uint64 // Status.LeaderStart
	started     time.Time
	exited      <-chan Exit   // receives exactly one Exit
	notify      *notifySocket // with NotifyReady
	// boundary describes what holds the child's processes (Status.Boundary).
	boundary string
	// signal sends sig to the main process, or to its whole group; it
	// fails with os.ErrProcessDone once the child is reaped.
	signal func(sig syscall.Signal, group bool) error
	// child is the process behind it; nil for the tests' stand-ins and
	// for a run whose child ended during a hand-over.
	child *child
}

// spawnProcess is the spawn function of real agents.
func spawnProcess(s *settings, af *agentFiles) (spawned, error) {
	c, err := spawn(s, af)
	if err != nil {
		return spawned{}, err
	}
	return c.spawned(), nil
}

func (c *child) spawned() spawned {
	return spawned{pid: c.pid, leaderStart: c.leaderStart, started: c.started, exited: c.done, notify: c.notify, boundary: c.boundary(),
		signal: func(sig syscall.Signal, group bool) error {
			if group {
				return c.signalGroup(sig)
			}
			return c.signalLeader(sig)
		}, child: c}
}

// killReason is why tend is killing the current child, which decides how
// its exit counts.
type killReason int

const (
	notKilling       killReason = iota
	killRequested               // Stop or Restart: no automatic restart
	killStartTimeout            // not ready within StartTimeout: a failed run
	killWatchdog                // missed its keep-alive: a failed run
	killTriggered               // reported WATCHDOG=trigger: a failed run
	killStopTimeout             // still alive StopTimeout after STOPPING=1: a failed run
	killUnhealthy               // a health verdict: a failed run
	killTaskTimeout             // a task past TaskSpec.Timeout: a failed run
)

// run is the current child and everything that lives and dies with it: the
// contract it was started with, why it is being killed, and its timers.
type run struct {
	spawned
	contract contract
	// handedDigest is the digest of the contract a handed-over child was
	// started with by the previous binary, which may differ from
	// contract until Apply restarts it; "" for a child spawned here.
	handedDigest string
	killing      killReason
	readiness    *readiness // polls the Ready probe (or READY=1) while Starting

	// What the child said over its notify socket, as far as the owner
	// has acted on it, and what that changed.
	said       notifySnapshot
	watchdog   time.Duration // the contract's, unless WATCHDOG_USEC= changed it
	stopping   bool          // it sent STOPPING=1 on its own
	reloadSent bool          // it was sent its reload signal
	reload     *reloadOp     // a ReloadByNotify reload under way
	unhealthy  string        // the verdict that is stopping it
	// probeFailure is the Ready probe's last error at the start timeout.
	probeFailure string
	// depRuns are the runs of its dependencies the child started
	// against (see dependencies.propagated).
	depRuns map[string]uint64

	ready       timer // Starting: Running after StartSeconds, or the start timeout
	stable      timer // Running: clears the streak after ResetAfter
	kill        timer // Stopping: SIGKILL when StopTimeout ends
	dog         timer // Running with a watchdog: next keep-alive deadline
	reloadTimer timer // a notify reload's timeout
}

// reloadOp is a reload waiting for the child's RELOADING=1 and READY=1.
type reloadOp struct {
	sentSeq  uint64        // the notify state's seq when the signal went out
	sentMono time.Duration // CLOCK_MONOTONIC then, for MONOTONIC_USEC=
	acked    bool          // RELOADING=1 for this reload came
	waiters  []chan error
}

// digest names the contract the child was started with.
func (r *run) digest() string {
	if r.handedDigest != "" {
		return r.handedDigest
	}
	return r.contract.digest()
}

// end stops everything that belonged to the run once its child is gone.
func (r *run) end() {
	r.readiness.stop()
	for _, t := range []*timer{&r.ready, &r.stable, &r.kill, &r.dog, &r.reloadTimer} {
		t.stop()
	}
}

// killGroup SIGKILLs the run's process group, recording why.
func (r *run) killGroup(why killReason) {
	if r.killing == notKilling {
		r.killing = why
	}
	r.signal(syscall.SIGKILL, true) //nolint:errcheck // ESRCH: already gone, the exit is on its way
}

// describe adds to an exit what tend knows of why the child died.
func (r *run) describe(e Exit, s *settings) Exit {
	switch r.killing {
	case killRequested:
		e.Requested = true
	case killStartTimeout:
		e.Err = fmt.Sprintf("start timeout: not ready within %v", s.startTimeout)
		if r.probeFailure != "" {
			e.Err += " (the Ready probe's last error: " + r.probeFailure + ")"
		}
	case killWatchdog:
		e.Err = fmt.Sprintf("watchdog timeout: no WATCHDOG=1 for %v", r.watchdog)
	case killTriggered:
		e.Err = "watchdog triggered: the agent sent WATCHDOG=trigger"
	case killStopTimeout:
		e.Err = fmt.Sprintf("stop timeout: still running %v after STOPPING=1", s.stopTimeout)
	case killUnhealthy:
		e.Err = "unhealthy: " + r.unhealthy
	case killTaskTimeout:
		e.Err = fmt.Sprintf("task timeout: still running after %v", s.task.timeout)
	}
	if r.notify != nil {
		e.Errno, e.ExitStatus = r.said.errno, r.said.exitStatus
	}
	return e
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/notify"
)

// Errors returned by Process methods; match them with errors.Is.
var (
	// ErrAlreadyStarted: Start found the agent Running.
	ErrAlreadyStarted = errors.New("already started")
	// ErrNotRunning: Signal or Reload found no live child.
	ErrNotRunning = errors.New("not running")
	// ErrStartFailed: the child never reached Running (spawn error, exit
	// during Starting, or a Stop that overtook the Start). The message
	// says which.
	ErrStartFailed = errors.New("start failed")
	// ErrNotApplicable: Unhealthy named a run that is not the current
	// Running one; nothing was done.
	ErrNotApplicable = errors.New("verdict not applicable")
	// ErrReloadUnsupported: Reload of an agent whose ReloadMode is none.
	ErrReloadUnsupported = errors.New("reload not supported (reload_mode: none)")
	// ErrReloadFailed: a reload the agent did not complete: it did not
	// report RELOADING=1 and READY=1 in time (ReloadByNotify), or it died
	// of its reload signal or during the reload.
	ErrReloadFailed = errors.New("reload failed")
)

// killGrace is how long Stop waits for the reap after SIGKILL before it
// gives up on a stuck child and returns.
const killGrace = 5 * time.Second

// Process supervises one agent: it spawns the child, watches it, restarts it
// under its RestartSpec and stops it on request. All of a Process's state
// belongs to one owner goroutine, which exists while the agent is active
// (Starting, Running, Stopping, Backoff, or Failed with a retry pending);
// the methods send it requests. They are safe for concurrent use.
type Process struct {
	name string

	mu     sync.Mutex
	cfg    *settings // replaced, never modified, by update
	active *loop     // the owner goroutine's handle; nil while idle
	closed bool      // removed from its Group: never starts again
	// gate, while a hand-over pauses the idle Process, holds back
	// whatever would start an owner; closed when it resumes here.
	gate   chan struct{}
	status Status        // last snapshot the owner published
	files  agentFiles    // listeners and stored descriptors, kept across children
	sched  scheduleTimer // a scheduled task's next run
	subs   notify.List[Event]
	// history keeps the latest events (History).
	history history
	// group, for a Group's member, is the Group's subscriber list: the
	// owner publishes there too, in order, with no goroutine in between.
	// Set before the Process is shared, never changed.
	group *notify.List[Event]
	// tell, for a Group's member, is called with its name on each
	// transition, for the members that depend on it; it never blocks.
	tell func(name string)
}

// New validates spec and returns a stopped Process. Errors name the config
// key and value at fault (*config.FieldError). New starts nothing, except
// that it takes over the agent of the same name a lone Process handed
// over to this binary (see Process.Handover), which goes on running.
func New(spec Spec) (*Process, error) {
	cfg, err := spec.resolve(DefaultKinds())
	if err == nil {
		err = containment{why: errors.New("a Process made by New runs in a process group; a Group's members get cgroups (GroupOptions.Containment)")}.check(cfg.resources)
	}
	if err == nil && len(cfg.dependsOn) > 0 {
		err = config.Invalid("depends_on", cfg.dependsOn[0].name, "a Process made by New has no Group to depend on")
	}
	if err != nil {
		return nil, fmt.Errorf("agent %q: %w", spec.Identity(), err)
	}
	p := newFromSettings(cfg)
	if ia := claimHandedOver(cfg.name); ia != nil && p.resume(ia) == resumedChanged {
		p.launch(reqRestart) //nolint:errcheck // its outcome is in the events, as Launch's
	}
	return p, nil
}

func newFromSettings(cfg *settings) *Process {
	return &Process{name: cfg.name, cfg: cfg, status: Status{Name: cfg.name, Limits: cfg.resources}}
}

// Name returns the agent's name.
func (p *Process) Name() string { return p.name }

// Status returns the latest snapshot.
func (p *Process) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// Subscribe calls fn with every later state transition, in order, on a
// goroutine of its own, so a slow fn never delays supervision. If fn falls
// more than 1024 events behind, the oldest queued events are dropped and
// the next delivered Event reports how many in Missed. The returned cancel
// stops delivery (an fn call under way finishes).
func (p *Process) Subscribe(fn func(Event)) (cancel func()) {
	return p.subs.Add(withMissed(fn), Event.String, p.settings().log)
}

// withMissed adapts a hook to notify's, which reports dropped events
// separately.
func withMissed(fn func(Event)) func(Event, int) {
	return func(e Event, missed int) {
		e.Missed = missed
		fn(e)
	}
}

// Start spawns the agent and returns once it is Running (alive for
// StartSeconds), or with the reason it could not get there: the spawn error
// (ENOENT, EACCES, a bad work dir) wrapped with the agent's name, or
// ErrStartFailed. A child that dies while Starting is restarted under the
// restart policy and Start keeps waiting, until Running or Failed. ctx
// bounds the wait, not the child's life. Start on a Running agent returns
// ErrAlreadyStarted; in Backoff it starts the child at once.
func (p *Process) Start(ctx context.Context) error {
	return p.call(ctx, request{kind: reqStart}, true)
}

// Stop stops the agent: StopSignal and SIGCONT to its whole process group,
// up to StopTimeout (shortened, never lengthened, by ctx's deadline) for it
// to exit, then SIGKILL to the group. It returns once the child is reaped
// and no live process is left in its group. When ctx ends first, it
// escalates to SIGKILL at once. Stop on an idle agent returns nil.
func (p *Process) Stop(ctx context.Context) error {
	return p.call(ctx, request{kind: reqStop}, p.sched.armed())
}

// Restart stops the running child as Stop does and starts a new one,
// returning as Start does. On an idle agent it is Start. Manual restarts do
// not count toward MaxRestarts.
func (p *Process) Restart(ctx context.Context) error {
	return p.call(ctx, request{kind: reqRestart}, true)
}

// Reload asks the agent to reload, by its ReloadMode: ReloadBySignal
// sends ReloadSignal to the main process and returns once it is sent;
// ReloadByNotify also waits for the agent's RELOADING=1 and READY=1 (up
// to StartTimeout, which EXTEND_TIMEOUT_USEC= extends) and returns
// ErrReloadFailed when they do not come or the agent dies; ReloadByRestart
// is Restart; ReloadNone returns ErrReloadUnsupported. A child that dies
// of its reload signal, or during a notify reload, is reported on its
// exit event with ReasonReloadFailed. A Reload while Starting waits for
// Running; reloads asked for while one is under way are served together
// by the next. ErrNotRunning when no child is Starting or Running.
func (p *Process) Reload(ctx context.Context) error {
	return p.call(ctx, request{kind: reqReload}, false)
}

// CurrentRun returns the number of the current child (Status.Run) and
// whether it is Running: what a health checker judges. Its signature fits
// health.Subject.Run.
func (p *Process) CurrentRun() (run uint64, running bool) {
	st := p.Status()
	return st.Run, st.State == Running
}

// Unhealthy reports that run (from CurrentRun or Status.Run) is unhealthy,
// because of reason: a liveness failure, as in Kubernetes. It acts only
// on a Running child of that very run, and then as on a crash decided by
// tend: the child is stopped (StopSignal, then SIGKILL after StopTimeout),
// and its exit goes through the restart decision (policy, backoff,
// restart limit, the Group's budget), counted in Restarts, with "unhealthy:
// reason" on the Exit and ReasonUnhealthy on the event. A stopped, Failed,
// backing-off or already stopping agent, or a later run, is left alone and
// ErrNotApplicable returned. It returns once the stop has begun. Its
// signature fits health.Subject.Unhealthy.
func (p *Process) Unhealthy(ctx context.Context, run uint64, reason string) error {
	return p.call(ctx, request{kind: reqUnhealthy, run: run, reason: reason}, false)
}

// Healthy reports that run (from CurrentRun) passed its health checks:
// Status.Healthy becomes true, with a Running -> Running event
// (ReasonHealthy), which is what a dependency's ConditionHealthy waits
// for. Only the current Running run can be proven healthy (else
// ErrNotApplicable); a new run starts unproven. Its signature fits
// health.Subject.Healthy.
func (p *Process) Healthy(ctx context.Context, run uint64) error {
	return p.call(ctx, request{kind: reqHealthy, run: run}, false)
}

// Close stops the agent as Stop does and then closes what it holds
// beyond its children: its Listen sockets, stored descriptors and, for a
// Group's member, its cgroup (a failure to remove it is logged). A
// closed Process never starts again; Group.Remove closes its member. If
// the stop fails, nothing is closed and the Process can be started again.
func (p *Process) Close(ctx context.Context) error {
	p.setClosed(true)
	if err := p.Stop(ctx); err != nil {
		p.setClosed(false)
		return err
	}
	if err := p.files.close(); err != nil {
		p.settings().log.Error(err, "cannot remove the agent's cgroup")
	}
	return nil
}

// Signal sends sig to the main process (not its group), through the
// pidfd-backed *os.Process so it can never reach a recycled PID.
// ErrNotRunning when no child is Starting or Running.
func (p *Process) Signal(sig os.Signal) error {
	return p.call(context.Background(), request{kind: reqSignal, sig: sig}, false)
}

// Wait blocks until the agent is idle (Stopped, Exited, or Failed with no
// retry pending) or ctx ends, and returns the latest Status.
func (p *Process) Wait(ctx context.Context) (Status, error) {
	p.mu.Lock()
	l := p.active
	p.mu.Unlock()
	if l != nil {
		select {
		case <-l.done:
		case <-ctx.Done():
			return p.Status(), ctx.Err()
		}
	}
	return p.Status(), nil
}

// call hands r to the owner goroutine, starting one if spawn is set and
// none runs, and waits for the answer. A call that finds no owner and may
// not start one is answered here: Stop succeeds, Signal and Reload fail.
func (p *Process) call(ctx context.Context, r request, spawn bool) error {
	l, err := p.deliver(ctx, &r, spawn)
	if l == nil {
		return err
	}
	return p.await(ctx, l, r)
}

// launch hands r to the owner and returns once the owner has taken it,
// without waiting for the outcome (the start, stop or restart goes on
// and is seen in events and the Status): the non-blocking form of call
// that Group.Launch uses. Requests taken are served in order.
func (p *Process) launch(kind reqKind) error {
	return p.launchRequest(request{kind: kind})
}

// launchRequest is launch of a request with its arguments.
func (p *Process) launchRequest(r request) error {
	r.taken = make(chan struct{})
	l, err := p.deliver(context.Background(), &r, r.kind != reqStop || p.sched.armed())
	if l != nil {
		select {
		case <-r.taken: // its immediate part is done: a start is Starting
		case <-l.done:
		}
	}
	return err
}

// deliver gives r to the owner (starting one when spawn is set) and
// returns the owner, or nil and the answer when there is none to ask.
func (p *Process) deliver(ctx context.Context, r *request, spawn bool) (*loop, error) {
	r.reply = make(chan error, 1)
	if d, ok := ctx.Deadline(); ok {
		r.deadline = d
	}
	for {
		l, closed, gate := p.owner(spawn)
		if gate != nil {
			select {
			case <-gate:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		switch {
		case l == nil && r.kind == reqStop:
			return nil, nil
		case l == nil && (r.kind == reqUnhealthy || r.kind == reqHealthy):
			return nil, fmt.Errorf("agent %q: %w: it is not running", p.name, ErrNotApplicable)
		case l == nil && closed:
			return nil, fmt.Errorf("agent %q: removed: %w", p.name, ErrNotFound)
		case l == nil:
			return nil, fmt.Errorf("agent %q: %w", p.name, ErrNotRunning)
		}
		select {
		case l.requests <- *r:
			return l, nil
		case <-l.done: // the owner ended before taking r: ask the next one
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (p *Process) await(ctx context.Context, l *loop, r request) error {
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
	}
	if r.kind != reqStop {
		return ctx.Err()
	}
	select {
	case l.requests <- request{kind: reqKill}:
	case <-l.done:
	}
	select {
	case err := <-r.reply:
		return err
	case <-time.After(killGrace):
		return fmt.Errorf("agent %q: not reaped %v after SIGKILL: %w", p.name, killGrace, ctx.Err())
	}
}

// owner returns the running owner goroutine's handle, starting one when
// spawn is set, none runs and the Process is not closed; or, with no
// owner while a hand-over pauses the Process, the gate to wait for.
func (p *Process) owner(spawn bool) (l *loop, closed bool, gate chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active == nil && p.gate != nil {
		return nil, p.closed, p.gate
	}
	if p.active == nil && spawn && !p.closed {
		p.active = newLoop(p, p.status)
		go p.active.run()
	}
	return p.active, p.closed, nil
}

func (p *Process) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// setClosed closes (or reopens) the Process to new starts; a Group closes
// a member before stopping it for removal, so that no start racing with
// the removal can leave an unregistered child running.
func (p *Process) setClosed(closed bool) {
	p.mu.Lock()
	p.closed = closed
	p.mu.Unlock()
}

// update replaces the Process's settings. An idle Process takes them at
// once; an active one through its owner, which uses them from its next
// decision on (the next spawn, restart delay or stop). The caller decides
// whether the change needs a restart.
func (p *Process) update(ctx context.Context, cfg *settings) error {
	if err := p.files.box.setLimits(cfg.resources.limits()); err != nil {
		return fmt.Errorf("agent %q: %w", p.name, err)
	}
	p.mu.Lock()
	if p.active == nil && !p.sched.armed() {
		p.cfg = cfg
		p.status.Limits = cfg.resources
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	return p.call(ctx, request{kind: reqUpdate, cfg: cfg}, true)
}

func (p *Process) settings() *settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// publish stores st as the latest snapshot.
func (p *Process) publish(st Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = st
}

// retire detaches the owner l once it has nothing left to do.
func (p *Process) retire(l *loop) {
	p.mu.Lock()
	if p.active == l {
		p.active = nil
	}
	p.mu.Unlock()
	close(l.done)
}

type reqKind int

const (
	reqStart reqKind = iota
	reqStop
	reqRestart
	reqReload
	reqSignal
	reqKill   // a Stop caller's ctx ended: SIGKILL now
	reqUpdate // swap in new settings
	reqUnhealthy
	reqPause        // a hand-over: see loop.pause
	reqDependencies // a dependency changed: see loop.onDependencies
	reqScheduled    // a scheduled run is due
	reqHealthy      // Healthy
)

type request struct {
	kind     reqKind
	sig      os.Signal
	deadline time.Time // the caller's ctx deadline, zero if none
	cfg      *settings // for reqUpdate
	run      uint64    // for reqUnhealthy, reqHealthy
	reason   string    // for reqUnhealthy
	due      time.Time // for reqScheduled: the moment the schedule was armed for
	pause    *pauseRequest
	reply    chan error
	taken    chan struct{} // closed by the owner once it has handled r, if set
}

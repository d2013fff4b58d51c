package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/reload"
	"github.com/tend-dev/tend/supervisor"
)

// daemon is the host: a supervisor.Group of agents, each with a rotated
// log, a heartbeat socket and a health checker, reconfigured from files.
type daemon struct {
	log        logr.Logger
	dataDir    string
	configPath string // "" when running the embedded demo config
	group      *supervisor.Group
	watcher    *reload.Watcher

	ctx context.Context // the daemon's life: health checkers and heartbeat servers run under it
	wg  sync.WaitGroup

	mu     sync.Mutex
	agents map[string]*agentRuntime
}

// agentRuntime is what the daemon keeps per agent beside its Process: one
// rotating log across the agent's restarts, and its health machinery.
type agentRuntime struct {
	cfg     agentConfig
	rotator *logs.Rotator
	stdout  *logs.Stream
	stderr  *logs.Stream
	checker *health.Checker
	hbSrv   *health.HeartbeatServer
	stop    context.CancelFunc // ends checker and heartbeat server
}

func newDaemon(ctx context.Context, log logr.Logger, dataDir, configPath string) (*daemon, error) {
	store, err := supervisor.NewFileStore(filepath.Join(dataDir, "state.json"))
	if err != nil {
		return nil, err
	}
	group, err := supervisor.NewGroup(supervisor.GroupOptions{Logger: log, Store: store,
		Budget: supervisor.Budget{Restarts: 20, Per: config.Duration(time.Minute)}})
	if err != nil {
		return nil, err
	}
	d := &daemon{log: log, dataDir: dataDir, configPath: configPath, group: group, ctx: ctx,
		agents: map[string]*agentRuntime{}}
	d.watcher, err = reload.NewWatcher(reload.Options{Logger: log}, d.onFileChange)
	if err != nil {
		return nil, err
	}
	if configPath != "" {
		if err := d.watcher.Add(configPath); err != nil {
			return nil, err
		}
	}
	group.Subscribe(d.logEvent)
	return d, nil
}

func (d *daemon) logEvent(e supervisor.Event) {
	kv := []any{"agent", e.Name, "from", e.From.String(), "to", e.To.String(), "reason", string(e.Reason), "restarts", e.Status.Restarts}
	if x := e.Status.LastExit; x != nil && (e.Reason == supervisor.ReasonExited || e.Reason == supervisor.ReasonSpawnFailed) {
		kv = append(kv, "exit", x.String(), "ranFor", x.Ran.Round(time.Millisecond).String())
		if x.Tail != "" {
			kv = append(kv, "lastOutput", lastLine(x.Tail))
		}
	}
	d.log.Info("agent state", kv...)
}

func lastLine(s string) string {
	lines := splitLines(s)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// apply makes the running agents match cfg. Everything is checked before
// anything changes: a bad config leaves the running agents untouched.
func (d *daemon) apply(ctx context.Context, cfg daemonConfig) error {
	for _, w := range cfg.Warnings {
		d.log.Info("config warning", "warning", w)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fresh := map[string]*agentRuntime{} // runtimes created for this config
	discard := func() {
		for _, rt := range fresh {
			rt.rotator.Close()
		}
	}
	specs := make([]supervisor.Spec, 0, len(cfg.Agents))
	for _, a := range cfg.Agents {
		name := a.Identity()
		if a.Dir != "" {
			if err := os.MkdirAll(a.Dir, 0o750); err != nil {
				discard()
				return fmt.Errorf("agent %q: work_dir: %w", name, err)
			}
		}
		if _, err := a.HealthCheck.Checks(func() int { return 0 }, health.NewHeartbeat(0)); err != nil {
			discard()
			return fmt.Errorf("agent %q: health_check: %w", name, err)
		}
		rt := d.agents[name]
		if rt == nil || rt.rotator.Path() != a.logPath(d.dataDir) {
			r, err := logs.New(a.Logs.options(a.logPath(d.dataDir)))
			if err != nil {
				discard()
				return fmt.Errorf("agent %q: logs: %w", name, err)
			}
			rt = &agentRuntime{rotator: r, stdout: r.Stream("stdout"), stderr: r.Stream("stderr")}
			fresh[name] = rt
		}
		spec := a.Spec
		spec.Stdout, spec.Stderr, spec.Logger = rt.stdout, rt.stderr, d.log
		if a.HealthCheck.HTTPEndpoint != "" {
			// Running means serving, not merely alive for StartSeconds.
			spec.Ready = health.HTTPGet(a.HealthCheck.HTTPEndpoint).Check
		}
		specs = append(specs, spec)
	}
	// Watch before anything starts, so that an edit made while an agent
	// comes up is not missed.
	for _, a := range cfg.Agents {
		if a.ConfigFile != "" {
			d.watcher.Add(a.ConfigFile)
		}
	}
	// Launch hands out the starts and stops and returns: the status API
	// and the other agents never wait for one that is slow to come up.
	res, err := d.group.Launch(ctx, specs)
	if errors.Is(err, supervisor.ErrRejected) {
		discard()
		return err // nothing changed
	}
	if err != nil {
		d.log.Error(err, "some agents could not be started or stopped")
	}
	d.log.Info("agents applied", "added", res.Added, "removed", res.Removed, "restarted", res.Restarted,
		"updated", res.Updated, "unchanged", res.Unchanged)

	stillWatched := map[string]bool{}
	for _, a := range cfg.Agents {
		stillWatched[a.ConfigFile] = true
	}
	for _, name := range res.Removed {
		rt := d.agents[name]
		if f := rt.cfg.ConfigFile; f != "" && !stillWatched[f] {
			d.watcher.Remove(f)
		}
		rt.close()
		delete(d.agents, name)
	}
	for _, a := range cfg.Agents {
		name := a.Identity()
		rt := d.agents[name]
		if f := fresh[name]; f != nil {
			if rt != nil {
				rt.close()
			}
			rt = f
			d.agents[name] = rt
		}
		changed := slices.Contains(res.Added, name) || slices.Contains(res.Restarted, name) || slices.Contains(res.Updated, name) ||
			!reflect.DeepEqual(rt.cfg.HealthCheck, a.HealthCheck) || rt.cfg.SocketPath != a.SocketPath // not part of the Spec
		if changed || rt.stop == nil {
			rt.cfg = a
			d.startHealth(name, rt)
		}
	}
	return nil
}

// startHealth (re)starts the agent's heartbeat server and health checker.
func (d *daemon) startHealth(name string, rt *agentRuntime) {
	if rt.stop != nil {
		rt.stop()
	}
	rt.stop, rt.checker, rt.hbSrv = nil, nil, nil
	if !rt.cfg.IsEnabled() {
		return
	}
	hc := rt.cfg.HealthCheck
	hb := health.NewHeartbeat(hc.HeartbeatTimeout.Std())
	ctx, cancel := context.WithCancel(d.ctx)
	rt.stop = cancel
	if rt.cfg.SocketPath != "" {
		os.MkdirAll(filepath.Dir(rt.cfg.SocketPath), 0o750)
		srv, err := health.NewHeartbeatServer(health.ServerOptions{Path: rt.cfg.SocketPath, AgentID: name,
			Heartbeat: hb, Logger: d.log.WithValues("agent", name)})
		if err != nil {
			d.log.Error(err, "no heartbeat socket for agent", "agent", name)
		} else {
			rt.hbSrv = srv
			d.wg.Add(1)
			go func() { defer d.wg.Done(); srv.Serve(ctx) }()
		}
	} else if hc.HeartbeatTimeout > 0 {
		d.log.Info("heartbeat_timeout without socket_path: heartbeat check off", "agent", name)
		hc.HeartbeatTimeout = 0
	}
	pid := func() int {
		if p, ok := d.group.Get(name); ok {
			return p.Status().PID
		}
		return 0
	}
	checks, err := hc.Checks(pid, hb)
	if err != nil {
		d.log.Error(err, "health checks off", "agent", name)
		return
	}
	checker, err := health.NewChecker(hc.Config, d.subject(name), checks...)
	if err != nil {
		d.log.Error(err, "health checks off", "agent", name)
		return
	}
	rt.checker = checker.WithLogger(d.log.WithValues("agent", name))
	d.wg.Add(1)
	go func() { defer d.wg.Done(); checker.Run(ctx) }()
}

// subject is what the agent's Checker judges: the verdict goes to the
// supervisor, which acts only on the current Running run and applies the
// agent's restart policy, backoff and limit to it.
func (d *daemon) subject(name string) health.Subject {
	return health.Subject{
		Run: func() (uint64, bool) {
			if p, ok := d.group.Get(name); ok {
				return p.CurrentRun()
			}
			return 0, false
		},
		Unhealthy: func(ctx context.Context, run uint64, reason string) error {
			p, ok := d.group.Get(name)
			if !ok {
				return supervisor.ErrNotFound
			}
			return p.Unhealthy(ctx, run, reason)
		},
	}
}

func (rt *agentRuntime) close() {
	if rt.stop != nil {
		rt.stop()
	}
	rt.rotator.Close()
}

// onFileChange reacts to the watcher: the daemon's own config reloads the
// agent list; an agent's config_file gets that agent a SIGHUP.
func (d *daemon) onFileChange(ctx context.Context, c reload.Change) {
	if c.Path == d.configPath {
		if c.Removed {
			d.log.Info("config file removed; keeping the running agents", "path", c.Path)
			return
		}
		cfg, err := parseConfig(c.Data)
		if err == nil {
			err = d.apply(ctx, cfg)
		}
		if err != nil {
			d.log.Error(err, "new config rejected; the running agents keep running", "path", c.Path)
		}
		return
	}
	if c.Removed {
		d.log.Info("agent config file removed; its agents keep running as they are", "path", c.Path)
		return
	}
	d.mu.Lock()
	var names []string
	for name, rt := range d.agents {
		if abs, _ := filepath.Abs(rt.cfg.ConfigFile); abs == c.Path {
			names = append(names, name)
		}
	}
	d.mu.Unlock()
	for _, name := range names {
		err := d.group.Reload(ctx, name)
		switch {
		case errors.Is(err, supervisor.ErrNotRunning):
			d.log.Info("agent config changed while it is not running", "agent", name)
		case err != nil:
			d.log.Error(err, "cannot reload agent", "agent", name)
		default:
			d.log.Info("agent config changed; sent the reload signal", "agent", name, "sha256", c.Hash)
		}
	}
}

// shutdown stops every agent within the deadline, then closes the logs.
func (d *daemon) shutdown(ctx context.Context) error {
	err := d.group.StopAll(ctx)
	d.mu.Lock()
	for _, rt := range d.agents {
		rt.close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	return err
}

package edgedaemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/metrics"
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
	metrics    *metrics.Collector
	started    time.Time // when this binary began supervising

	mu     sync.Mutex // never held across agent starts or stops
	agents map[string]*agentRuntime
}

// agentRuntime is what the daemon keeps per agent beside its Process: one
// rotating log across the agent's restarts, and what its health
// attachment shows the status API.
type agentRuntime struct {
	cfg      agentConfig
	rotator  *logs.Rotator
	stdout   *logs.Stream
	stderr   *logs.Stream
	health   healthView
	unexport func() // takes the rotator out of the metrics
}

// healthView is the agent's current checker and heartbeat server, set by
// its health attachment while it is open.
type healthView struct {
	mu      sync.Mutex
	checker *health.Checker
	hbSrv   *health.HeartbeatServer
}

func (h *healthView) set(c *health.Checker, srv *health.HeartbeatServer) {
	h.mu.Lock()
	h.checker, h.hbSrv = c, srv
	h.mu.Unlock()
}

func (h *healthView) get() (*health.Checker, *health.HeartbeatServer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checker, h.hbSrv
}

func newDaemon(log logr.Logger, dataDir, configPath string) (*daemon, error) {
	store, err := supervisor.NewFileStore(filepath.Join(dataDir, "state.json"))
	if err != nil {
		return nil, err
	}
	group, err := supervisor.NewGroup(supervisor.GroupOptions{Logger: log, Store: store,
		Budget: supervisor.Budget{Restarts: 20, Per: config.Duration(time.Minute)}})
	if err != nil {
		return nil, err
	}
	d := &daemon{log: log, dataDir: dataDir, configPath: configPath, group: group,
		metrics: metrics.New(group, metrics.Options{}), started: time.Now(), agents: map[string]*agentRuntime{}}
	d.watcher, err = reload.NewWatcher(reload.Options{Logger: log}, d.onFileChange)
	if err != nil {
		return nil, err
	}
	if configPath != "" {
		if err := d.watcher.Add(configPath); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// apply makes the running agents match cfg. Everything is checked before
// anything changes: a bad config leaves the running agents untouched.
func (d *daemon) apply(ctx context.Context, cfg daemonConfig) (supervisor.ApplyResult, error) {
	for _, w := range cfg.Warnings {
		d.log.Info("config warning", "warning", w)
	}
	d.mu.Lock()
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
				d.mu.Unlock()
				return supervisor.ApplyResult{}, fmt.Errorf("agent %q: work_dir: %w", name, err)
			}
		}
		if err := a.HealthCheck.Validate(); err != nil {
			discard()
			d.mu.Unlock()
			return supervisor.ApplyResult{}, fmt.Errorf("agent %q: health_check: %w", name, err)
		}
		rt := d.agents[name]
		if rt == nil || rt.rotator.Path() != a.logPath(d.dataDir) {
			r, err := logs.New(a.Logs.options(a.logPath(d.dataDir)))
			if err != nil {
				discard()
				d.mu.Unlock()
				return supervisor.ApplyResult{}, fmt.Errorf("agent %q: logs: %w", name, err)
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
		spec.Attach = []supervisor.Attachment{d.healthAttachment(a, &rt.health)}
		specs = append(specs, spec)
	}
	d.mu.Unlock()
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
		return res, err // nothing changed
	}
	if err != nil {
		d.log.Error(err, "some agents could not be started or stopped")
	}
	d.log.Info("agents applied", "added", res.Added, "removed", res.Removed, "restarted", res.Restarted,
		"updated", res.Updated, "unchanged", res.Unchanged, "resumed", res.Resumed)

	d.mu.Lock()
	defer d.mu.Unlock()
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
		if f := fresh[name]; f != nil {
			if rt := d.agents[name]; rt != nil {
				rt.close()
			}
			f.unexport = d.metrics.AddRotator(name, f.rotator)
			d.agents[name] = f
		}
		d.agents[name].cfg = a
	}
	return res, nil
}

// healthConfig is what an agent's health attachment is built from: the
// Group rebuilds it when any of this changes.
type healthConfig struct {
	Check      health.Spec
	SocketPath string
	Enabled    bool
}

// healthAttachment is the agent's heartbeat server and health checker,
// which the Group opens, rebuilds and closes with the agent. The checker's
// verdicts go to the agent's Process, which applies its restart policy,
// backoff and limit to them.
func (d *daemon) healthAttachment(a agentConfig, view *healthView) supervisor.Attachment {
	cfg := healthConfig{Check: a.HealthCheck, SocketPath: a.SocketPath, Enabled: a.IsEnabled()}
	return supervisor.Attachment{Name: "health", Config: cfg, Open: func(ctx context.Context, p *supervisor.Process) (func(), error) {
		if !cfg.Enabled {
			return nil, nil
		}
		log := d.log.WithValues("agent", p.Name())
		hc := cfg.Check
		if cfg.SocketPath == "" && hc.HeartbeatTimeout > 0 {
			// agent_defaults may set it for agents that cannot beat.
			log.Info("heartbeat_timeout without socket_path: heartbeat check off")
			hc.HeartbeatTimeout = 0
		}
		if _, err := d.group.CgroupParent(); err == nil {
			hc.TreeUsage = treeUsage(p) // the cgroup sees descendants /proc cannot tie to it
		}
		hb := health.NewHeartbeat(hc.HeartbeatTimeout.Std())
		checks, err := hc.Checks(func() int { return p.Status().PID }, hb)
		var checker *health.Checker
		if err == nil {
			checker, err = health.NewChecker(hc.Config, health.Subject{Run: p.CurrentRun, Unhealthy: p.Unhealthy, Healthy: p.Healthy}, checks...)
		}
		if err != nil {
			return nil, fmt.Errorf("health checks: %w", err)
		}
		checker.WithLogger(log)
		var srv *health.HeartbeatServer
		if cfg.SocketPath != "" {
			os.MkdirAll(filepath.Dir(cfg.SocketPath), 0o750)
			if srv, err = health.NewHeartbeatServer(health.ServerOptions{Path: cfg.SocketPath, AgentID: p.Name(),
				Heartbeat: hb, Logger: log}); err != nil {
				return nil, fmt.Errorf("heartbeat socket: %w", err)
			}
		}
		view.set(checker, srv)
		unexport := d.metrics.AddChecker(p.Name(), checker)
		var wg sync.WaitGroup
		wg.Go(func() { checker.Run(ctx) })
		if srv != nil {
			wg.Go(func() { srv.Serve(ctx) })
		}
		return func() { wg.Wait(); unexport(); view.set(nil, nil) }, nil
	}}
}

func (rt *agentRuntime) close() {
	rt.unexport()
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
			_, err = d.apply(ctx, cfg)
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

// shutdown stops every agent within the deadline and closes what the
// Group keeps for them, then the logs.
func (d *daemon) shutdown(ctx context.Context) error {
	err := d.group.Close(ctx)
	d.mu.Lock()
	for _, rt := range d.agents {
		rt.close()
	}
	d.mu.Unlock()
	return err
}

// treeUsage reads a contained agent's tree-wide usage for its resources
// probe.
func treeUsage(p *supervisor.Process) func() (health.TreeUsage, error) {
	return func() (health.TreeUsage, error) {
		u, err := p.TreeUsage()
		return health.TreeUsage{CPU: u.CPU, RSSBytes: u.RSSBytes, Processes: u.Processes}, err
	}
}

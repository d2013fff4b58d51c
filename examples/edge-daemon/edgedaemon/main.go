// Package edgedaemon is the edge-daemon, a small but real host daemon
// assembled from tend, as a package: its command (examples/edge-daemon)
// calls Main, and a build that links more (the OpAMP bridge's module)
// passes Extensions. The daemon
// supervises the agents its config file lists (in the daemon config format: agents, agent_defaults, binary_path ...),
// gives each a rotated log, heartbeat socket and health checks, restarts
// the unhealthy, sends SIGHUP when an agent's config file changes,
// reconciles the agent list when its own config changes, serves a status
// page, Prometheus metrics and a JSON API on localhost (changes need a
// bearer token, or the control socket), and upgrades in place on SIGUSR2
// or POST /upgrade: the new binary takes the agents over without
// restarting any.
//
//	go run ./examples/edge-daemon                          # the built-in demo
//	go run ./examples/edge-daemon -config configs/exporters.yaml
package edgedaemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tend-dev/tend/reload"
	"github.com/tend-dev/tend/supervisor"
)

// Extension is what a build of the daemon adds beside it: its own flags,
// and a function that runs with the daemon once its agents are applied,
// until ctx ends (shutdown); Main waits for it before stopping the agents.
type Extension struct {
	// Flags registers the extension's flags before they are parsed.
	Flags func(fs *flag.FlagSet)
	// Run serves beside the daemon; an error is logged.
	Run func(ctx context.Context, h Host) error
}

// Host is the daemon as an Extension sees it.
type Host struct {
	Group *supervisor.Group
	// ConfigPath is the daemon's config file ("" in the demo): writing it
	// is how its configuration changes, and what Apply reads.
	ConfigPath string
	DataDir    string
	// Validate checks a config file's content as the daemon checks its
	// own; Apply applies it, as an edit of the file would, and says what
	// changed.
	Validate func(data []byte) error
	Apply    func(ctx context.Context, data []byte) (supervisor.ApplyResult, error)
	Logger   logr.Logger
}

// Main runs the daemon (or, re-executed as one, a demo agent) and
// returns the process's exit code.
func Main(extensions ...Extension) int {
	if mode := os.Getenv(demoEnv); mode != "" {
		return runDemoAgent(mode)
	}
	if err := run(extensions); err != nil {
		fmt.Fprintln(os.Stderr, "edge-daemon:", err)
		return 1
	}
	return 0
}

// defaultListen is the status API's address unless -listen says otherwise.
const defaultListen = "127.0.0.1:8080"

// defaultDataDir is per user, so that two users' daemons on one machine
// do not share state and logs.
func defaultDataDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "tend-edge-daemon")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("tend-edge-daemon-%d", os.Getuid()))
}

func run(extensions []Extension) error {
	configPath := flag.String("config", "", "daemon config file (YAML or JSON, the daemon config format); empty runs the built-in demo")
	dataDir := flag.String("data", defaultDataDir(), "state file, and logs of agents without a work_dir")
	listen := flag.String("listen", defaultListen, "address of the status API; when the default is taken, a free port (printed)")
	shutdownTimeout := flag.Duration("shutdown-timeout", 20*time.Second, "how long shutdown may take before agents are killed")
	controlPath := flag.String("control-socket", "", "Unix socket (mode 0600) serving the whole API to this user and root without a token; default control.sock in the data directory")
	var level slog.Level
	flag.TextVar(&level, "log-level", slog.LevelInfo, "least level logged: debug, info, warn or error")
	for _, x := range extensions {
		if x.Flags != nil {
			x.Flags(flag.CommandLine)
		}
	}
	flag.Parse()

	log := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// The host, not the library, owns the process's signals.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return err
	}
	token, err := loadToken(filepath.Join(*dataDir, tokenFileName))
	if err != nil {
		return err
	}
	var cfg daemonConfig
	path := ""
	if *configPath != "" {
		if path, err = filepath.Abs(*configPath); err != nil {
			return err
		}
		cfg, err = loadConfig(path)
	} else {
		cfg, err = prepareDemo(*dataDir)
	}
	if err != nil {
		return err
	}
	d, err := newDaemon(log, *dataDir, path)
	if err != nil {
		return err
	}
	if _, err := d.apply(ctx, cfg); err != nil {
		return err
	}
	upgrades := make(chan string, 1) // the binary to upgrade to
	if *controlPath == "" {
		*controlPath = filepath.Join(*dataDir, "control.sock")
	}
	apis, err := serveAPI(d, token, *listen, *controlPath, upgrades)
	if err != nil {
		d.shutdown(context.Background())
		return err
	}
	watchCtx, stopWatching := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { d.watcher.Run(watchCtx); close(watched) }()
	banner(d, path, apis[0].ln.Addr().String(), *controlPath)
	if path == "" {
		go demoReload(ctx, d, cfg)
	}
	extended := d.runExtensions(ctx, extensions)
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	for ctx.Err() == nil {
		var to string
		select {
		case <-ctx.Done():
			continue
		case <-usr2:
			to, _ = os.Executable()
		case to = <-upgrades:
		}
		uctx, cancel := context.WithTimeout(ctx, *shutdownTimeout)
		err := d.upgrade(uctx, to, apis...)
		cancel()
		log.Error(err, "upgrade failed; this binary goes on supervising")
	}

	log.Info("shutting down", "deadline", shutdownTimeout.String())
	extended.Wait()
	stopWatching()
	<-watched
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	for _, api := range apis {
		api.close(sctx)
	}
	os.Remove(*controlPath)
	if err := d.shutdown(sctx); err != nil {
		return err
	}
	log.Info("all agents stopped")
	return nil
}

// runExtensions starts each extension's Run with the daemon as a Host;
// the returned group ends when they all have (after ctx).
func (d *daemon) runExtensions(ctx context.Context, extensions []Extension) *sync.WaitGroup {
	h := Host{Group: d.group, ConfigPath: d.configPath, DataDir: d.dataDir, Logger: d.log,
		Validate: func(data []byte) error { _, err := parseConfig(data); return err },
		Apply: func(ctx context.Context, data []byte) (supervisor.ApplyResult, error) {
			cfg, err := parseConfig(data)
			if err != nil {
				return supervisor.ApplyResult{}, err
			}
			return d.apply(ctx, cfg)
		}}
	var wg sync.WaitGroup
	for _, x := range extensions {
		if x.Run != nil {
			wg.Go(func() {
				if err := x.Run(ctx, h); err != nil {
					d.log.Error(err, "extension")
				}
			})
		}
	}
	return &wg
}

// serveAPI serves the page, /metrics and the JSON API on the TCP
// address and the whole API on the control socket, both behind the guard
// (see auth.go), and returns them TCP first.
func serveAPI(d *daemon, token, addr, controlPath string, upgrades chan<- string) ([]*apiServer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler := guard{token: token, uid: os.Getuid(), log: d.log}.wrap(
		d.statusHandler(upgradeHandler(upgrades), promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: errorLog{d.log}})))
	ln, err := listenAPI(addr)
	if err != nil {
		return nil, fmt.Errorf("status API: %w", err)
	}
	tcp, err := newAPIServer(apiListenerName, ln, handler)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("status API: %w", err)
	}
	ux, err := listenControl(controlPath)
	var control *apiServer
	if err == nil {
		control, err = newAPIServer(controlSocketName, ux, handler)
	}
	if err != nil {
		tcp.close(context.Background())
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return []*apiServer{tcp, control}, nil
}

// errorLog passes promhttp's errors to the daemon's log.
type errorLog struct{ log logr.Logger }

func (e errorLog) Println(v ...any) {
	e.log.Error(fmt.Errorf("%s", fmt.Sprint(v...)), "metrics scrape")
}

// banner tells a newcomer what runs and where to look.
func banner(d *daemon, configPath, addr, controlPath string) {
	source := configPath
	if source == "" {
		source = "built-in demo (run with -config FILE for your own)"
	}
	fmt.Printf("\nedge-daemon: supervising %d agents from %s\n", len(d.group.List()), source)
	d.mu.Lock()
	for _, st := range d.group.List() {
		if rt := d.agents[st.Name]; rt != nil {
			fmt.Printf("  %-12s %-9s log %s\n", st.Name, st.State, rt.rotator.Path())
		}
	}
	d.mu.Unlock()
	tokenPath := filepath.Join(d.dataDir, tokenFileName)
	fmt.Printf("page:    http://%s/  (buttons need the token: http://%s/#token=$(cat %s))\n", addr, addr, tokenPath)
	fmt.Printf("metrics: curl http://%s/metrics\n", addr)
	fmt.Printf("status:  curl http://%s/agents\n", addr)
	if list := d.group.List(); len(list) > 0 {
		name := list[0].Name // an agent it runs, whatever the config
		fmt.Printf("logs:    curl 'http://%s/agents/%s/logs?n=20'\n", addr, name)
		fmt.Printf("control: curl -X POST -H \"Authorization: Bearer $(cat %s)\" http://%s/agents/%s/restart\n", tokenPath, addr, name)
		fmt.Printf("     or: curl -X POST --unix-socket %s http://localhost/agents/%s/restart\n", controlPath, name)
	}
	fmt.Printf("stop with Ctrl-C (SIGTERM works too)\n\n")
}

// demoReload changes the healthy agent's config file after a while, so the
// demo shows a config change turning into a SIGHUP.
func demoReload(ctx context.Context, d *daemon, cfg daemonConfig) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(15 * time.Second):
	}
	for _, a := range cfg.Agents {
		if a.ConfigFile == "" {
			continue
		}
		err := reload.Update(a.ConfigFile, map[string]any{"greeting": "hello again", "updated_at": time.Now().Format(time.RFC3339)}, nil)
		if err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error(err, "demo config update failed")
		}
	}
}

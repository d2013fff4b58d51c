package opamp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/supervisor"
)

// Config is what a Bridge needs. ServerURL is required; so are
// ConfigPath, Validate and Apply for the bridge to accept remote
// configuration (without them it only reports).
type Config struct {
	// ServerURL is the OpAMP server: ws:// or wss:// for the WebSocket
	// transport (the server can push at once), http:// or https:// for
	// HTTP polling at the heartbeat interval.
	ServerURL string
	// Header is sent with every request: "Authorization: Bearer ..." for
	// a server that wants a token.
	Header http.Header
	// TLS configures a wss:// or https:// connection (CA pool, client
	// certificate); nil uses the system's roots.
	TLS *tls.Config

	// InstanceUID names this host to the server, and should stay the same
	// across its restarts (keep it in the host's data directory); the zero
	// value makes a new UUIDv7.
	InstanceUID types.InstanceUid
	// ServiceName and ServiceVersion identify the host ("tend" and its
	// main module's version by default); Attributes are more
	// non-identifying attributes beside host.name, os.type and host.arch.
	ServiceName, ServiceVersion string
	Attributes                  map[string]string

	// Heartbeat is how often the bridge reports when nothing changes
	// (default 30s); the server may ask for another interval.
	Heartbeat time.Duration
	// Coalesce gathers the agents' transitions this long into one health
	// report (default 200ms): a crash loop of fifty agents is a report
	// or so a Coalesce, not a message per event.
	Coalesce time.Duration
	// Healthy decides whether an agent counts as healthy; nil counts an
	// agent Running, Completed or waiting for its next scheduled run.
	Healthy func(supervisor.Status) bool

	// ConfigPath is the host's config file: a remote configuration is
	// written there (atomically) and applied from it, and its content is
	// the effective configuration reported.
	ConfigPath string
	// ConfigName picks the file of the server's config map; empty takes
	// the map's only file, or the one named "".
	ConfigName string
	// Validate checks a remote configuration as a local file is checked,
	// before anything is written.
	Validate func(data []byte) error
	// Apply is the host's own reconfiguration from the config file's
	// content (the same as for a local edit): it decodes and applies it to
	// the Group and says what changed. Nothing a server sends is acted on
	// except through it.
	Apply func(ctx context.Context, data []byte) (supervisor.ApplyResult, error)
	// Verify, if set, is asked after the changed agents came up (a health
	// check of the host's own); an error rolls the configuration back.
	Verify func(ctx context.Context, changed []string) error
	// VerifyWindow is how long the changed agents get to become ready
	// (default 30s); Settle is how long after that they must stay up
	// without a restart (default 3s), so that a crash loop that reached
	// Running once is rolled back too.
	VerifyWindow, Settle time.Duration

	// Logger receives the bridge's and opamp-go's log lines.
	Logger logr.Logger
}

// Bridge connects a supervisor.Group to an OpAMP server as an OpAMP
// client (the host is the agent in OpAMP's terms; its agents are its
// components): it reports the host's description, each agent's health,
// the effective configuration and the remote configuration's status,
// applies remote configurations as transactions that roll back when the
// changed agents do not come up, and restarts agents on the server's
// command. It reconnects by itself, with backoff, and resends its whole
// state on each connection; while offline it keeps only the latest state.
type Bridge struct {
	cfg    Config
	group  *supervisor.Group
	log    logr.Logger
	client client.OpAMPClient

	dirty chan struct{}  // a transition to report; cap 1
	tasks sync.WaitGroup // restarts the server commanded, waited for by Run

	mu      sync.Mutex
	pending *protobufs.AgentRemoteConfig // the latest remote config not yet taken
	cancel  context.CancelFunc           // the apply under way's
	handled []byte                       // the hash of the last config taken
	offers  chan struct{}                // a remote config is pending; cap 1
}

// Defaults for Config's zero fields.
const (
	defaultHeartbeat    = 30 * time.Second
	defaultCoalesce     = 200 * time.Millisecond
	defaultVerifyWindow = 30 * time.Second
	defaultSettle       = 3 * time.Second
)

// New checks cfg and returns a Bridge for g; Run connects it.
func New(g *supervisor.Group, cfg Config) (*Bridge, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.InstanceUID == (types.InstanceUid{}) {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		cfg.InstanceUID = types.InstanceUid(id)
	}
	setDefault(&cfg.Heartbeat, defaultHeartbeat)
	setDefault(&cfg.Coalesce, defaultCoalesce)
	setDefault(&cfg.VerifyWindow, defaultVerifyWindow)
	setDefault(&cfg.Settle, defaultSettle)
	if cfg.ServiceName == "" {
		cfg.ServiceName = "tend"
	}
	if cfg.Healthy == nil {
		cfg.Healthy = runningOrDone
	}
	return &Bridge{cfg: cfg, group: g, log: cfg.Logger.WithName("opamp"),
		dirty: make(chan struct{}, 1), offers: make(chan struct{}, 1)}, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func (cfg *Config) check() error {
	u, err := url.Parse(cfg.ServerURL)
	switch {
	case cfg.ServerURL == "":
		return config.Invalid("server_url", cfg.ServerURL, "required")
	case err != nil:
		return config.Invalid("server_url", cfg.ServerURL, err.Error())
	case u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https":
		return config.Invalid("server_url", cfg.ServerURL, "want a ws, wss, http or https URL")
	case u.Host == "":
		return config.Invalid("server_url", cfg.ServerURL, "names no host")
	case cfg.ConfigPath != "" && cfg.Apply == nil:
		return config.Invalid("config_path", cfg.ConfigPath, "remote configuration needs the host's Apply")
	}
	for key, d := range map[string]time.Duration{"heartbeat": cfg.Heartbeat, "coalesce": cfg.Coalesce, "verify_window": cfg.VerifyWindow, "settle": cfg.Settle} {
		if d < 0 {
			return config.Invalid(key, d.String(), "must not be negative")
		}
	}
	return nil
}

// websocket reports whether the URL names the WebSocket transport.
func (cfg *Config) websocket() bool {
	u, _ := url.Parse(cfg.ServerURL)
	return u.Scheme == "ws" || u.Scheme == "wss"
}

// Run connects to the server and serves it until ctx ends, then
// disconnects. It returns an error only if the client cannot start (a
// bad setting); an unreachable server is retried with backoff.
func (b *Bridge) Run(ctx context.Context) error {
	if b.cfg.websocket() {
		b.client = client.NewWebSocket(opampLogger{b.log})
	} else {
		b.client = client.NewHTTP(opampLogger{b.log})
	}
	if err := b.client.SetAgentDescription(b.description()); err != nil {
		return err
	}
	if err := b.client.SetHealth(b.health()); err != nil { // before the capability that promises it
		return err
	}
	capabilities := b.capabilities()
	if err := b.client.SetCapabilities(&capabilities); err != nil {
		return err
	}
	if err := b.client.SetCustomCapabilities(&protobufs.CustomCapabilities{Capabilities: []string{RestartCapability}}); err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	heartbeat := b.cfg.Heartbeat
	settings := types.StartSettings{
		OpAMPServerURL: b.cfg.ServerURL, Header: b.cfg.Header, TLSConfig: b.cfg.TLS,
		InstanceUid: b.cfg.InstanceUID, HeartbeatInterval: &heartbeat,
		Callbacks: types.Callbacks{
			OnConnect:          func(context.Context) { b.log.V(1).Info("connected", "server", b.cfg.ServerURL) },
			OnConnectFailed:    func(_ context.Context, err error) { b.log.V(1).Info("cannot connect; retrying", "error", err.Error()) },
			OnMessage:          func(_ context.Context, m *types.MessageData) { b.onMessage(runCtx, m) },
			OnCommand:          func(_ context.Context, c *protobufs.ServerToAgentCommand) error { return b.onCommand(runCtx, c) },
			GetEffectiveConfig: func(context.Context) (*protobufs.EffectiveConfig, error) { return b.effective() },
		},
	}
	cancelSub := b.group.Subscribe(func(supervisor.Event) { b.markDirty() })
	defer cancelSub()
	if err := b.client.Start(runCtx, settings); err != nil {
		return fmt.Errorf("opamp: %w", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { b.report(runCtx) })
	wg.Go(func() { b.applyRemote(runCtx) })
	<-ctx.Done()
	stop()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.client.Stop(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		b.log.V(1).Info("disconnect", "error", err.Error())
	}
	b.tasks.Wait() // after Stop: no callback can start one now
	return nil
}

func (b *Bridge) capabilities() protobufs.AgentCapabilities {
	c := protobufs.AgentCapabilities_AgentCapabilities_ReportsStatus |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHealth |
		protobufs.AgentCapabilities_AgentCapabilities_ReportsHeartbeat |
		protobufs.AgentCapabilities_AgentCapabilities_AcceptsRestartCommand
	if b.cfg.ConfigPath != "" {
		c |= protobufs.AgentCapabilities_AgentCapabilities_AcceptsRemoteConfig |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsRemoteConfig |
			protobufs.AgentCapabilities_AgentCapabilities_ReportsEffectiveConfig
	}
	return c
}

// markDirty asks the reporter for a health report; it never blocks.
func (b *Bridge) markDirty() {
	select {
	case b.dirty <- struct{}{}:
	default:
	}
}

// InstanceUID is the host's instance UID as the server shows it, in hex.
func (b *Bridge) InstanceUID() string { return fmt.Sprintf("%x", b.cfg.InstanceUID[:]) }

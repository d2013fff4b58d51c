package supervisor

import (
	"context"
	"io"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// Spec describes one agent. Its json tags are the snake_case keys users
// already write (binary_path, work_dir, restart.max_retries ...), so a host
// decodes its own config file into Specs (decode.Strict reads YAML or JSON
// strictly and names the key of a bad value), or embeds Spec in its own
// per-agent struct beside fields tend does not know. Fields that cannot come from a
// file (writers, the logger, a custom backoff policy) are tagged "-".
//
// Zero values mean the documented default; New validates everything and
// reports the first bad field by its config key.
type Spec struct {
	// Name identifies the agent in events, logs and errors, unless ID is
	// set. No path separators or control characters, at most 128 bytes.
	Name string `json:"name,omitempty"`
	// ID, when set, identifies the agent instead of Name, which is then
	// only a display name (the daemon config format writes both: `id: filebeat-logs`,
	// `name: "Filebeat Log Collector"`).
	ID string `json:"id,omitempty"`
	// Type is the agent's kind: filebeat, telegraf, node_exporter, custom
	// (or empty), or one a Group registers. When Args is empty the kind
	// supplies the arguments (see Kind).
	Type string `json:"type,omitempty"`
	// ConfigFile is the agent's own config file, used by kinds to build
	// arguments and by hosts to watch for changes.
	ConfigFile string `json:"config_file,omitempty"`
	// Enabled false registers the agent in a Group without starting it.
	// Nil means true.
	Enabled *bool `json:"enabled,omitempty"`
	// Path is the absolute path of the binary, executed directly (never
	// through a shell). It must exist and be executable.
	Path string `json:"binary_path"`
	// Args are the arguments after the program name.
	Args []string `json:"args,omitempty"`
	// Dir is the working directory; empty means the host's. It must exist.
	Dir string `json:"work_dir,omitempty"`
	// Env is the child's environment as "KEY=value" entries. The host's
	// environment is not passed on unless InheritEnv is set; a child whose
	// environment sets no PATH gets systemd's default
	// (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin), and
	// nothing else (no HOME, LANG or TZ unless given).
	Env []string `json:"env,omitempty"`
	// EnvFile adds the KEY=VALUE lines of a file in systemd's
	// EnvironmentFile= syntax (# comments, quotes, trailing-backslash
	// continuation), which override Env; "-/path" makes a missing file
	// no error. It is read when the Spec is validated (New, Apply), so an
	// edit takes effect at the next Apply, which restarts the agent.
	EnvFile string `json:"env_file,omitempty"`
	// InheritEnv starts the child with the host's environment, overridden
	// by Env.
	InheritEnv bool `json:"inherit_env,omitempty"`

	// User runs the child as this user (a name or numeric uid). Empty means
	// the host's user. Needs CAP_SETUID/CAP_SETGID.
	User string `json:"user,omitempty"`
	// Group is the primary group (name or gid); empty means User's primary
	// group.
	Group string `json:"group,omitempty"`
	// Groups are the supplementary groups (names or gids). Nil means User's
	// own supplementary groups (as login does); an empty list means none.
	// Only used with User or Group.
	Groups []string `json:"groups,omitempty"`

	// Restart says whether and how fast the agent is restarted after it
	// dies without being asked to.
	Restart RestartSpec `json:"restart,omitzero"`

	// StartSeconds is how long the child must stay alive to count as
	// started (Running), like supervisord's startsecs, when there is no
	// Ready probe. Zero means 1s.
	StartSeconds config.Duration `json:"start_seconds,omitempty"`
	// Ready, when set, is the start criterion instead of StartSeconds: the
	// child is Running once Ready returns nil. It is called while the child
	// is Starting (every 50ms, backing off to 1s; each call under a 2s
	// context it must honour), never after; a health probe's Check fits,
	// e.g. health.HTTPGet(url).Check.
	Ready func(ctx context.Context) error `json:"-"`
	// NotifyReady makes the child's own report the start criterion, the
	// systemd way: it gets NOTIFY_SOCKET, a private datagram socket (owned
	// by the agent's user, mode 0600, in a 0700 directory), and is Running
	// once it sends READY=1 there. The socket is read for the child's whole
	// life, so the agent never blocks in sd_notify. The keys understood,
	// and who may send them, are listed in the package documentation
	// ("The service protocol"). Takes precedence over Ready.
	NotifyReady bool `json:"notify_ready,omitempty"`
	// Watchdog, with NotifyReady, expects the child to send WATCHDOG=1 at
	// least this often once it is Running (it gets WATCHDOG_USEC); a child
	// that misses it is killed and the run counts as failed ("watchdog
	// timeout"). Zero: no watchdog.
	Watchdog config.Duration `json:"watchdog,omitempty"`
	// StartTimeout is how long a child with a Ready probe (or NotifyReady)
	// may take to get ready; then it is killed and the run counts as failed
	// ("start timeout"). Zero means 60s.
	StartTimeout config.Duration `json:"start_timeout,omitempty"`
	// StopSignal asks the agent to stop; it goes to the whole process
	// group, followed by SIGCONT. Zero means SIGTERM.
	StopSignal Signal `json:"stop_signal,omitempty"`
	// StopTimeout is how long Stop waits after StopSignal before SIGKILL.
	// Zero means 30s.
	StopTimeout config.Duration `json:"stop_timeout,omitempty"`
	// ReloadSignal is what Reload sends to the main process. Zero means
	// SIGHUP.
	ReloadSignal Signal `json:"reload_signal,omitempty"`
	// ReloadMode is how Reload is done: signal (the default: send
	// ReloadSignal), notify (send it, then wait for RELOADING=1 and READY=1
	// within StartTimeout; needs notify_ready), restart (a requested
	// Restart, for agents that die of any signal, such as collectd) or
	// none (Reload fails with ErrReloadUnsupported).
	ReloadMode ReloadMode `json:"reload_mode,omitempty"`
	// Listen lists sockets tend binds once for the agent and hands to
	// every child as LISTEN_FDS (socket activation, sd_listen_fds(3)):
	// "tcp://127.0.0.1:9100", "tcp://[::1]:9100", "tcp://:9100" (every
	// address), "udp://HOST:PORT", "unix:///run/agent.sock". The sockets
	// stay bound across restarts, so clients queue instead of being
	// refused and no leftover of an earlier child can take the port; they
	// are closed by Process.Close (Group.Remove). Linux only; the child is
	// started through the host's own binary to set LISTEN_PID (see
	// DESIGN.md), so the agent's user must be able to execute it.
	Listen []string `json:"listen,omitempty"`
	// FDStoreMax is how many descriptors the agent may park with tend
	// (FDSTORE=1, systemd's FileDescriptorStoreMax): a later child of the
	// agent gets them back, after the Listen sockets, as LISTEN_FDS. A
	// requested Stop closes them; restarts keep them. Zero turns the store
	// off; at most 1024. Needs notify_ready.
	FDStoreMax int `json:"fd_store_max,omitempty"`
	// Resources are hard limits on the agent's whole process tree
	// (memory_max, memory_high, cpu, pids_max), enforced through its
	// cgroup; only a Group's members can have them (see Resources).
	Resources Resources `json:"resources,omitzero"`
	// ParentDeathSignal, when set, is delivered to the child if the host
	// process dies (Linux PR_SET_PDEATHSIG), so a SIGKILLed host leaves no
	// agent behind. tend spawns such children from a goroutine locked to
	// its own OS thread for as long as the Process is active, because the
	// kernel fires the signal when the spawning thread ends: this costs one
	// OS thread per agent that sets it.
	ParentDeathSignal Signal `json:"parent_death_signal,omitempty"`

	// Stdout and Stderr receive the child's output. An *os.File is handed
	// to the child directly; any other writer is fed from a pipe that tend
	// drains, so a failing writer never blocks or kills the child. Nil
	// discards the stream (it still feeds the crash tail).
	Stdout io.Writer `json:"-"`
	Stderr io.Writer `json:"-"` // as Stdout
	// TailBytes is how much of the latest piped output is kept in memory and
	// attached to every exit (Exit.Tail). Zero means 4096; negative turns
	// the tail off, and with it the pipe for a nil writer.
	TailBytes int `json:"tail_bytes,omitempty"`

	// Logger receives tend's own log lines about this agent. The zero
	// value discards them.
	Logger logr.Logger `json:"-"`

	// Task, when set, makes the agent a task that runs to completion,
	// once or on a schedule (see TaskSpec).
	Task *TaskSpec `json:"task,omitempty"`
	// DependsOn names the agents of the same Group this one needs, each
	// with the condition that must hold before it starts (`depends_on:
	// {collector: ready, migrate: completed_successfully}`) and what its
	// going down does to this one (see Dependency). The Group starts
	// agents in dependency order, in parallel where independent, and
	// StopAll stops them in reverse. Until its dependencies hold the
	// agent is Waiting, with Status.WaitingFor saying for what. Unknown
	// names, self-dependencies and cycles are refused by Apply and Add;
	// New refuses any (a lone Process has no Group to depend on).
	DependsOn map[string]Dependency `json:"depends_on,omitempty"`

	// Attach lists what a Group keeps for this agent beside its child (see
	// Attachment): opened when the agent is added, rebuilt when an
	// attachment's Config changes, closed when it is removed.
	Attach []Attachment `json:"-"`
}

// Identity returns ID if set, else Name: the key the agent is known by.
func (s Spec) Identity() string {
	if s.ID != "" {
		return s.ID
	}
	return s.Name
}

// IsEnabled reports whether the agent should run: Enabled is nil or true.
func (s Spec) IsEnabled() bool { return s.Enabled == nil || *s.Enabled }

// Reload modes.
const (
	// ReloadBySignal sends ReloadSignal and returns once it is delivered.
	ReloadBySignal ReloadMode = "signal"
	// ReloadByNotify sends ReloadSignal and returns once the agent reports
	// RELOADING=1 and then READY=1 (systemd's Type=notify-reload).
	ReloadByNotify ReloadMode = "notify"
	// ReloadByRestart restarts the agent, as a requested Restart.
	ReloadByRestart ReloadMode = "restart"
	// ReloadNone makes Reload an error.
	ReloadNone ReloadMode = "none"
)

// ReloadMode says how Reload is done; empty means ReloadBySignal.
type ReloadMode string

// Restart policies.
const (
	// RestartAlways restarts after every exit that was not requested.
	RestartAlways RestartPolicy = "always"
	// RestartOnFailure restarts unless the exit was a success (exit 0 or a
	// code in SuccessExitCodes).
	RestartOnFailure RestartPolicy = "on-failure"
	// RestartNever leaves the agent Exited.
	RestartNever RestartPolicy = "never"
)

// RestartPolicy says which unrequested exits lead to a restart. The empty
// policy means RestartAlways: agents are meant to run.
type RestartPolicy string

// RestartSpec is the restart section of a Spec, keyed as the daemon config format
// writes it (restart: {policy, max_retries, backoff_base, backoff_max}).
type RestartSpec struct {
	// Policy is always (default), on-failure or never.
	Policy RestartPolicy `json:"policy,omitempty"`
	// SuccessExitCodes are exit codes counted as success besides 0.
	SuccessExitCodes []int `json:"success_exit_codes,omitempty"`
	// PreventExitCodes are exit codes after which the agent is never
	// restarted automatically: it goes to Failed at once (systemd's
	// RestartPreventExitStatus, s6's exit 125).
	PreventExitCodes []int `json:"prevent_exit_codes,omitempty"`
	// MaxRestarts is how many automatic restarts RestartWindow may hold;
	// one more moves the agent to Failed. Zero means 10; negative means no
	// limit.
	MaxRestarts int `json:"max_retries,omitempty"`
	// RestartWindow is the sliding window of MaxRestarts. Zero means 10m.
	RestartWindow config.Duration `json:"restart_window,omitempty"`
	// ResetAfter is how long a run must stay Running to clear the failure
	// streak, so the next crash restarts at once again. Zero means 5m.
	ResetAfter config.Duration `json:"reset_after,omitempty"`
	// RetryFailedAfter brings a Failed agent back to Backoff with its
	// counters cleared after this long, so an unattended device heals
	// itself. Zero means 30m; negative keeps it Failed until Start.
	RetryFailedAfter config.Duration `json:"retry_failed_after,omitempty"`

	// FirstDelay is the wait before the first automatic restart of a
	// failure streak. Zero (the default) restarts at once, as the daemon
	// config format's original daemon did; the backoff (backoff_base ...)
	// paces the restarts after it. Set it, like systemd's RestartSec, for
	// an agent that must not come back at once (one that would hammer a
	// backend, or whose port needs a moment).
	FirstDelay config.Duration `json:"first_delay,omitempty"`
	// Config holds backoff_base, backoff_max, backoff_multiplier and
	// backoff_jitter, used when Backoff is nil: backoff_base is the wait
	// before the second restart of a streak.
	backoff.Config
	// Backoff, when set, paces restarts instead of the Config keys.
	Backoff backoff.Policy `json:"-"`
}

// Defaults applied by New to zero fields.
const (
	DefaultStartWait        = time.Second
	DefaultStartTimeout     = time.Minute
	DefaultStopTimeout      = 30 * time.Second
	DefaultMaxRestarts      = 10
	DefaultRestartWindow    = 10 * time.Minute
	DefaultResetAfter       = 5 * time.Minute
	DefaultRetryFailedAfter = 30 * time.Minute
	DefaultTailBytes        = 4096
)

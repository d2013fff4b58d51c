package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// settings is a validated Spec with every default applied: what the owner
// goroutine actually runs on.
type settings struct {
	name             string
	contract         contract // what the child is started with
	startWait        time.Duration
	ready            func(context.Context) error
	startTimeout     time.Duration
	stopTimeout      time.Duration
	stopSignal       syscall.Signal
	reloadSignal     syscall.Signal
	reloadMode       ReloadMode
	fdStoreMax       int
	policy           RestartPolicy
	successCodes     []int
	preventCodes     []int
	maxRestarts      int
	window           time.Duration
	resetAfter       time.Duration
	retryFailedAfter time.Duration
	firstDelay       time.Duration
	backoff          backoff.Policy
	stdout, stderr   io.Writer
	tailBytes        int
	resources        Resources     // applied to the agent's cgroup, in place
	task             *taskSettings // nil for an agent meant to run
	// dependsOn is Spec.DependsOn; deps, which a Group sets, judges it.
	dependsOn []dependency
	deps      *dependencies
	log       logr.Logger
	// restartAt, when set (by a Group with a restart budget), returns the
	// earliest moment an automatic restart due at the given time may run.
	restartAt func(due time.Time) time.Time
	// spawn starts a child: spawnProcess, or a stand-in in tests of the
	// timing logic.
	spawn func(*settings, *agentFiles) (spawned, error)
	// blockingWait spawns without a pidfd, so the waiter blocks a thread
	// as on kernels without pidfd; tests set it.
	blockingWait bool
	// fallbackLogged makes the pidfd fallback logged once, not per child.
	fallbackLogged *sync.Once
}

// noteWaitFallback logs, once per agent configuration, that exits are
// awaited with a blocked thread each because pidfd is unavailable.
func (s *settings) noteWaitFallback(reason error) {
	s.fallbackLogged.Do(func() {
		s.log.Info("pidfd unavailable; each child's exit is awaited on a thread of its own", "reason", reason.Error())
	})
}

// resolve validates s and applies defaults. Errors are *config.FieldError
// values naming the config key.
func (s Spec) resolve(kinds map[string]Kind) (*settings, error) {
	out, err := s.resolveValue(kinds)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (s Spec) resolveValue(kinds map[string]Kind) (settings, error) {
	nameKey := "name"
	if s.ID != "" {
		nameKey = "id"
	}
	if err := validateName(nameKey, s.Identity()); err != nil {
		return settings{}, err
	}
	args, err := s.kindArgs(kinds)
	if err != nil {
		return settings{}, err
	}
	out := settings{
		name: s.Identity(),
		contract: contract{
			path: s.Path, dir: s.Dir, args: args,
			parentDeathSignal: syscall.Signal(s.ParentDeathSignal),
			notifyReady:       s.NotifyReady,
			watchdog:          s.Watchdog.Std(),
		},
		stopSignal:     s.StopSignal.or(syscall.SIGTERM),
		reloadSignal:   s.ReloadSignal.or(syscall.SIGHUP),
		successCodes:   slices.Clone(s.Restart.SuccessExitCodes),
		preventCodes:   slices.Clone(s.Restart.PreventExitCodes),
		ready:          s.Ready,
		spawn:          spawnProcess,
		fallbackLogged: new(sync.Once),
		stdout:         s.Stdout,
		stderr:         s.Stderr,
		log:            s.Logger.WithValues("agent", s.Identity()),
	}
	if err := s.Resources.validate(); err != nil {
		return settings{}, err
	}
	out.resources = s.Resources
	if err := s.resolveProtocol(&out); err != nil {
		return settings{}, err
	}
	if s.ParentDeathSignal != 0 && runtime.GOOS != "linux" {
		return settings{}, config.Invalid("parent_death_signal", s.ParentDeathSignal, "is only supported on Linux")
	}
	// A disabled agent's binary and work dir may be absent (not
	// installed on this device); they are checked once it is enabled.
	if s.IsEnabled() {
		if err := checkBinary(s.Path); err != nil {
			return settings{}, err
		}
		if err := checkDir(s.Dir); err != nil {
			return settings{}, err
		}
	} else if err := checkBinaryPath(s.Path); err != nil {
		return settings{}, err
	}
	if out.contract.env, err = buildEnv(s.Env, s.EnvFile, s.InheritEnv); err != nil {
		return settings{}, err
	}
	if out.contract.cred, err = lookupCredential(s.User, s.Group, s.Groups); err != nil {
		return settings{}, err
	}
	durations := []struct {
		key  string
		val  config.Duration
		def  time.Duration
		dest *time.Duration
	}{
		{"start_seconds", s.StartSeconds, DefaultStartWait, &out.startWait},
		{"start_timeout", s.StartTimeout, DefaultStartTimeout, &out.startTimeout},
		{"stop_timeout", s.StopTimeout, DefaultStopTimeout, &out.stopTimeout},
		{"restart.restart_window", s.Restart.RestartWindow, DefaultRestartWindow, &out.window},
		{"restart.reset_after", s.Restart.ResetAfter, DefaultResetAfter, &out.resetAfter},
		{"restart.first_delay", s.Restart.FirstDelay, 0, &out.firstDelay},
	}
	for _, d := range durations {
		if d.val < 0 {
			return settings{}, config.Invalid(d.key, d.val, "must not be negative")
		}
		*d.dest = cmp.Or(d.val.Std(), d.def)
	}
	out.retryFailedAfter = cmp.Or(s.Restart.RetryFailedAfter.Std(), DefaultRetryFailedAfter)
	out.maxRestarts = cmp.Or(s.Restart.MaxRestarts, DefaultMaxRestarts)
	out.tailBytes = cmp.Or(s.TailBytes, DefaultTailBytes)

	if err := s.resolveTask(&out); err != nil {
		return settings{}, err
	}
	if out.dependsOn, err = resolveDependencies(s.DependsOn, out.name); err != nil {
		return settings{}, err
	}
	switch s.Restart.Policy {
	case "":
		out.policy = RestartAlways
		if out.task != nil {
			out.policy = RestartOnFailure
		}
	case RestartAlways, RestartOnFailure, RestartNever:
		out.policy = s.Restart.Policy
	default:
		return settings{}, config.Invalid("restart.policy", s.Restart.Policy, `must be "always", "on-failure" or "never"`)
	}
	for _, c := range slices.Concat(s.Restart.SuccessExitCodes, s.Restart.PreventExitCodes) {
		if c < 0 || c > 255 {
			return settings{}, config.Invalid("restart.success_exit_codes/prevent_exit_codes", c, "exit codes are 0-255")
		}
	}
	out.backoff = s.Restart.Backoff
	if out.backoff == nil {
		p, err := s.Restart.Config.Policy()
		if err != nil {
			var fe *config.FieldError
			if errors.As(err, &fe) {
				fe.Field = "restart." + fe.Field
			}
			return settings{}, err
		}
		out.backoff = p
	}
	return out, nil
}

// ValidateName reports whether name can identify an agent: non-empty, at
// most 128 bytes, no path separators, no control characters, not "." or "..".
// Names end up in file names and log keys, so they must be safe there.
func ValidateName(name string) error { return validateName("name", name) }

func validateName(key, name string) error {
	switch {
	case name == "":
		return config.Invalid(key, `""`, "must not be empty")
	case len(name) > 128:
		return config.Invalid(key, name, "must be at most 128 bytes")
	case name == "." || name == "..":
		return config.Invalid(key, name, "must not be . or ..")
	case strings.ContainsAny(name, `/\`):
		return config.Invalid(key, name, "must not contain path separators")
	case strings.ContainsFunc(name, unicode.IsControl):
		return config.Invalid(key, fmt.Sprintf("%q", name), "must not contain control characters")
	}
	return nil
}

// checkBinaryPath checks the form of binary_path: set and absolute.
func checkBinaryPath(path string) error {
	if path == "" {
		return config.Invalid("binary_path", `""`, "must not be empty")
	}
	if !filepath.IsAbs(path) {
		return config.Invalid("binary_path", path, "must be an absolute path")
	}
	return nil
}

func checkBinary(path string) error {
	if err := checkBinaryPath(path); err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return config.Invalid("binary_path", path, describeStatError(err))
	}
	if !info.Mode().IsRegular() {
		return config.Invalid("binary_path", path, "is not a regular file")
	}
	if info.Mode().Perm()&0o111 == 0 {
		return config.Invalid("binary_path", path, fmt.Sprintf("is not executable (mode %v)", info.Mode().Perm()))
	}
	return nil
}

func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return config.Invalid("work_dir", dir, describeStatError(err))
	}
	if !info.IsDir() {
		return config.Invalid("work_dir", dir, "is not a directory")
	}
	return nil
}

func describeStatError(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "does not exist"
	}
	return err.Error()
}

// buildEnv checks that every entry is KEY=value and, with inherit, lays the
// entries over the host's environment (later entries win, as in exec.Cmd).
// buildEnv is the child's environment: the host's if inherit, then
// entries, then envFile's (which win, as systemd's EnvironmentFile= over
// Environment=), and systemd's default PATH when none of them sets one.
func buildEnv(entries []string, envFile string, inherit bool) ([]string, error) {
	for _, e := range entries {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return nil, config.Invalid("env", fmt.Sprintf("%q", e), `entries must look like "KEY=value"`)
		}
	}
	var env []string
	if inherit {
		env = os.Environ()
	}
	env = append(env, entries...)
	if envFile != "" {
		fromFile, err := readEnvFile(envFile)
		if err != nil {
			return nil, err
		}
		env = append(env, fromFile...)
	}
	env = dedupEnv(env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append(env, defaultPath)
	}
	return env, nil
}

// dedupEnv keeps the last value of each key, in the order of first sight.
func dedupEnv(env []string) []string {
	index := map[string]int{}
	var out []string
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if i, ok := index[k]; ok {
			out[i] = e
			continue
		}
		index[k] = len(out)
		out = append(out, e)
	}
	return out
}

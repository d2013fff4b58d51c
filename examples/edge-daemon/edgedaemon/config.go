package edgedaemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/config/decode"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/supervisor"
)

// agentConfig is one agent entry of the daemon's config file: tend's
// supervisor.Spec with the host's own keys beside it, the shape the daemon config format
// configuration uses.
type agentConfig struct {
	supervisor.Spec
	// SocketPath is where the agent sends heartbeats.
	SocketPath string `json:"socket_path,omitempty"`
	// HealthCheck is the health_check section.
	HealthCheck health.Spec `json:"health_check,omitzero"`
	// Logs tunes the agent's rotated log (kept in work_dir/logs).
	Logs logSettings `json:"logs,omitzero"`
}

// logSettings is the part of logs.Options a config file sets per agent.
type logSettings struct {
	MaxSizeMB   int             `json:"max_size_mb,omitempty"`
	MaxBackups  int             `json:"max_backups,omitempty"`
	MaxAgeDays  int             `json:"max_age_days,omitempty"`
	Compress    *bool           `json:"compress,omitempty"`
	RotateEvery config.Duration `json:"rotate_every,omitempty"`
	RotateAt    string          `json:"rotate_at,omitempty"`
}

// options turns the settings into logs.Options for path: 10 MiB files, 5
// backups, gzipped, each line stamped with time and stream.
func (l logSettings) options(path string) logs.Options {
	o := logs.Options{Path: path, MaxSizeMB: 10, MaxBackups: 5, Compress: true,
		MaxAgeDays: l.MaxAgeDays, RotateEvery: l.RotateEvery, RotateAt: l.RotateAt,
		Prefix: logs.Prefix{Timestamp: "2006-01-02T15:04:05.000Z07:00", Stream: true}}
	if l.MaxSizeMB > 0 {
		o.MaxSizeMB = l.MaxSizeMB
	}
	if l.MaxBackups > 0 {
		o.MaxBackups = l.MaxBackups
	}
	if l.Compress != nil {
		o.Compress = *l.Compress
	}
	return o
}

// daemonConfig is the whole file, decoded and checked.
type daemonConfig struct {
	Agents []agentConfig
	// Warnings are things the operator should know but that did not stop
	// the config from loading.
	Warnings []string
}

// loadConfig reads a daemon config file, YAML or JSON.
func loadConfig(path string) (daemonConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return daemonConfig{}, err
	}
	c, err := parseConfig(data)
	if err != nil {
		return daemonConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// parseConfig accepts both shapes of the daemon config format: the multi-agent
// form (agents, with agent_defaults merged under each agent, the agent's
// own values winning) and the older single-agent form (agent). When both
// are present, agents wins and a warning says so. Unknown keys and bad
// values are errors that name the agent and the key.
func parseConfig(data []byte) (daemonConfig, error) {
	var file struct {
		AgentDefaults map[string]any   `json:"agent_defaults"`
		Agents        []map[string]any `json:"agents"`
		Agent         map[string]any   `json:"agent"`
	}
	if err := decode.Strict(data, &file); err != nil {
		return daemonConfig{}, err
	}
	// Checked as written first, so that a bad key or value is named where
	// the user wrote it (agent_defaults.restart.backoff_base, line 7), not
	// under each agent it is merged into.
	var asWritten struct {
		AgentDefaults agentConfig   `json:"agent_defaults"`
		Agents        []agentConfig `json:"agents"`
		Agent         agentConfig   `json:"agent"`
	}
	if err := decode.Strict(data, &asWritten); err != nil {
		return daemonConfig{}, err
	}
	var c daemonConfig
	entries := file.Agents
	switch {
	case file.Agents != nil && file.Agent != nil:
		c.Warnings = append(c.Warnings, "both agent and agents are set: using agents, ignoring agent")
	case file.Agent != nil:
		entry := file.Agent
		if entry["id"] == nil && entry["name"] == nil {
			entry = config.Merge(entry, map[string]any{"id": "agent"}).(map[string]any)
		}
		entries = []map[string]any{entry}
	}
	if len(entries) == 0 {
		return daemonConfig{}, errors.New("no agents configured (want agents: [...] or agent: {...})")
	}
	seen := map[string]bool{}
	for i, raw := range entries {
		merged, err := json.Marshal(config.Merge(file.AgentDefaults, raw))
		if err != nil {
			return daemonConfig{}, err
		}
		var a agentConfig
		if err := decode.Strict(merged, &a); err != nil {
			return daemonConfig{}, fmt.Errorf("agents[%d] (%v): %w", i, describe(raw), err)
		}
		name := a.Identity()
		if err := supervisor.ValidateName(name); err != nil {
			return daemonConfig{}, fmt.Errorf("agents[%d]: %w", i, err)
		}
		if seen[name] {
			return daemonConfig{}, fmt.Errorf("agents[%d]: id %q is used twice", i, name)
		}
		seen[name] = true
		c.Agents = append(c.Agents, a)
	}
	return c, nil
}

func describe(raw map[string]any) string {
	for _, key := range []string{"id", "name"} {
		if v, ok := raw[key]; ok {
			return fmt.Sprintf("%s %v", key, v)
		}
	}
	return "no id"
}

// logPath is where an agent's rotated log lives: work_dir/logs/<id>.log,
// or under the daemon's data directory when the agent has no work_dir.
func (a agentConfig) logPath(dataDir string) string {
	base := a.Dir
	if base == "" {
		base = filepath.Join(dataDir, a.Identity())
	}
	return filepath.Join(base, "logs", a.Identity()+".log")
}

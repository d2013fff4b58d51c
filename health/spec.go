package health

import (
	"time"

	"github.com/tend-dev/tend/config"
)

// Spec is the health_check section of an agent as the daemon config format writes
// it ({interval, heartbeat_timeout, cpu_threshold, memory_threshold,
// http_endpoint}), plus the Checker's own timing keys. Embed or decode it
// beside a supervisor.Spec in the host's per-agent struct.
type Spec struct {
	Config
	// HeartbeatTimeout turns on the heartbeat probe: unhealthy when the
	// agent has not beaten for this long (daemon config default: 90s).
	HeartbeatTimeout config.Duration `json:"heartbeat_timeout,omitempty"`
	// CPUThreshold is the CPU limit in percent of one core (daemon config default: 50.0).
	CPUThreshold float64 `json:"cpu_threshold,omitempty"`
	// MemoryThreshold is the RSS limit in bytes (daemon config default: 524288000).
	MemoryThreshold uint64 `json:"memory_threshold,omitempty"`
	// Sustain is how long a resource limit must be exceeded. Default 1m.
	Sustain config.Duration `json:"sustain,omitempty"`
	// Tree counts the agent's descendants in its resources.
	Tree bool `json:"tree,omitempty"`
	// HTTPEndpoint turns on an HTTP GET probe of this URL.
	HTTPEndpoint string `json:"http_endpoint,omitempty"`
	// TCPAddress turns on a TCP connect probe of this host:port.
	TCPAddress string `json:"tcp_address,omitempty"`
	// Exec turns on a command probe: the program and its arguments.
	Exec []string `json:"exec,omitempty"`
}

// Checks builds the probes s asks for: the process-alive probe on pid
// always, a heartbeat probe when HeartbeatTimeout is set (hb must then be
// the Heartbeat the agent's reports feed; see NewHeartbeat), resources
// when a threshold is set, and the HTTP, TCP and exec probes when given.
func (s Spec) Checks(pid func() int, hb *Heartbeat) ([]Check, error) {
	if s.HeartbeatTimeout < 0 {
		return nil, config.Invalid("heartbeat_timeout", s.HeartbeatTimeout, "must not be negative")
	}
	if s.CPUThreshold < 0 {
		return nil, config.Invalid("cpu_threshold", s.CPUThreshold, "must not be negative")
	}
	if s.Sustain < 0 {
		return nil, config.Invalid("sustain", s.Sustain, "must not be negative")
	}
	checks := []Check{{Name: "process", Probe: ProcessAlive(pid)}}
	if s.HeartbeatTimeout > 0 {
		if hb == nil {
			return nil, config.Invalid("heartbeat_timeout", s.HeartbeatTimeout, "is set but no heartbeat source was given")
		}
		checks = append(checks, Check{Name: "heartbeat", Probe: hb})
	}
	if s.CPUThreshold > 0 || s.MemoryThreshold > 0 {
		checks = append(checks, Check{Name: "resources", Probe: NewResources(pid, Limits{
			CPUPercent: s.CPUThreshold, RSSBytes: s.MemoryThreshold, Sustain: time.Duration(s.Sustain), Tree: s.Tree})})
	}
	if s.HTTPEndpoint != "" {
		checks = append(checks, Check{Name: "http", Probe: HTTPGet(s.HTTPEndpoint)})
	}
	if s.TCPAddress != "" {
		checks = append(checks, Check{Name: "tcp", Probe: TCPConnect(s.TCPAddress)})
	}
	if len(s.Exec) > 0 {
		checks = append(checks, Check{Name: "exec", Probe: Exec(s.Exec[0], s.Exec[1:]...)})
	}
	return checks, nil
}

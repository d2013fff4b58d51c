package health

import (
	"math"
	"net"
	"net/url"
	"path/filepath"
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
	// TreeUsage, when set, is where the resources probe samples the
	// agent's whole tree (see NewTreeResources), a contained agent's
	// cgroup, instead of /proc; Tree is then implied.
	TreeUsage func() (TreeUsage, error) `json:"-"`
}

// Validate checks every key of s, the Checker's timing included, and
// names the first bad one (*config.FieldError): durations not negative,
// timeout shorter than interval, thresholds in range, the HTTP endpoint
// an http or https URL with a host, the TCP address a host:port, the exec
// probe an absolute program. A host validates a reloaded config with it
// before anything changes.
func (s Spec) Validate() error {
	cfg := s.Config
	if err := cfg.validate(); err != nil {
		return err
	}
	switch {
	case s.HeartbeatTimeout < 0:
		return config.Invalid("heartbeat_timeout", s.HeartbeatTimeout, "must not be negative")
	case s.CPUThreshold < 0 || math.IsNaN(s.CPUThreshold) || math.IsInf(s.CPUThreshold, 0):
		return config.Invalid("cpu_threshold", s.CPUThreshold, "must be a percentage of one core, not negative")
	case s.Sustain < 0:
		return config.Invalid("sustain", s.Sustain, "must not be negative")
	}
	if s.HTTPEndpoint != "" {
		u, err := url.Parse(s.HTTPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config.Invalid("http_endpoint", s.HTTPEndpoint, "must be an http:// or https:// URL with a host")
		}
	}
	if s.TCPAddress != "" {
		if _, port, err := net.SplitHostPort(s.TCPAddress); err != nil || port == "" {
			return config.Invalid("tcp_address", s.TCPAddress, "must be host:port")
		}
	}
	if len(s.Exec) > 0 && !filepath.IsAbs(s.Exec[0]) {
		return config.Invalid("exec", s.Exec[0], "the program must be an absolute path")
	}
	return nil
}

// Checks builds the probes s asks for, after Validate: the process-alive
// probe on pid always, a heartbeat probe when HeartbeatTimeout is set (hb
// must then be the Heartbeat the agent's reports feed; see NewHeartbeat),
// resources when a threshold is set (from TreeUsage if given, else /proc
// from pid), and the HTTP, TCP and exec probes
// when given.
func (s Spec) Checks(pid func() int, hb *Heartbeat) ([]Check, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	checks := []Check{{Name: "process", Probe: ProcessAlive(pid)}}
	if s.HeartbeatTimeout > 0 {
		if hb == nil {
			return nil, config.Invalid("heartbeat_timeout", s.HeartbeatTimeout, "is set but no heartbeat source was given")
		}
		checks = append(checks, Check{Name: "heartbeat", Probe: hb})
	}
	if s.CPUThreshold > 0 || s.MemoryThreshold > 0 {
		limits := Limits{CPUPercent: s.CPUThreshold, RSSBytes: s.MemoryThreshold, Sustain: time.Duration(s.Sustain), Tree: s.Tree}
		probe := NewResources(pid, limits)
		if s.TreeUsage != nil {
			probe = NewTreeResources(s.TreeUsage, limits)
		}
		checks = append(checks, Check{Name: "resources", Probe: probe})
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

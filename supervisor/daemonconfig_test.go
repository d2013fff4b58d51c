package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"sigs.k8s.io/yaml"
)

// hostAgent is how a host composes one agent entry of its config file:
// tend's Spec beside the host's own keys.
type hostAgent struct {
	Spec
	SocketPath  string `json:"socket_path,omitempty"`
	HealthCheck struct {
		Interval         config.Duration `json:"interval,omitempty"`
		HeartbeatTimeout config.Duration `json:"heartbeat_timeout,omitempty"`
		CPUThreshold     float64         `json:"cpu_threshold,omitempty"`
		MemoryThreshold  uint64          `json:"memory_threshold,omitempty"`
		HTTPEndpoint     string          `json:"http_endpoint,omitempty"`
	} `json:"health_check,omitzero"`
}

// decodeDaemonConfig decodes the daemon config format's multi-agent file: agent_defaults merged
// under each agent (the agent's own values win), then each entry strictly
// into a hostAgent, errors naming the agent.
func decodeDaemonConfig(doc []byte) ([]hostAgent, error) {
	var file struct {
		AgentDefaults map[string]any   `json:"agent_defaults"`
		Agents        []map[string]any `json:"agents"`
	}
	if err := yaml.Unmarshal(doc, &file); err != nil {
		return nil, err
	}
	var out []hostAgent
	for i, raw := range file.Agents {
		merged, _ := json.Marshal(config.Merge(file.AgentDefaults, raw))
		dec := json.NewDecoder(bytes.NewReader(merged))
		dec.DisallowUnknownFields()
		var a hostAgent
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("agents[%d] (id %v): %w", i, raw["id"], err)
		}
		out = append(out, a)
	}
	return out, nil
}

func TestDaemonMultiAgentConfigDecodes(t *testing.T) {
	doc, err := os.ReadFile("testdata/daemon-agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	agents, err := decodeDaemonConfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range agents {
		ids = append(ids, a.Identity())
	}
	if !slices.Equal(ids, []string{"filebeat-logs", "telegraf-metrics", "node-exporter", "custom-agent-001"}) {
		t.Fatalf("agent ids %v", ids)
	}
	fb, tg, ne, custom := agents[0], agents[1], agents[2], agents[3]
	if fb.Name != "Filebeat Log Collector" || fb.Type != "filebeat" || fb.SocketPath == "" ||
		fb.HealthCheck.CPUThreshold != 50 || fb.HealthCheck.MemoryThreshold != 524288000 ||
		fb.Restart.Base.Std() != 10*time.Second || fb.Restart.MaxRestarts != 10 || len(fb.Args) != 4 {
		t.Errorf("filebeat entry: %+v", fb)
	}
	// agent_defaults fill what telegraf leaves out; its own policy wins.
	if tg.Restart.Policy != RestartOnFailure || tg.Restart.MaxRestarts != 10 || tg.Restart.Max.Std() != time.Minute ||
		tg.HealthCheck.CPUThreshold != 80 || tg.HealthCheck.Interval.Std() != 30*time.Second {
		t.Errorf("telegraf entry with defaults: %+v", tg)
	}
	args, err := tg.kindArgs(DefaultKinds())
	if err != nil || !slices.Equal(args, []string{"-config", "/etc/telegraf/telegraf.conf"}) {
		t.Errorf("telegraf kind args %v, %v", args, err)
	}
	if ne.HealthCheck.HTTPEndpoint != "http://127.0.0.1:9100/metrics" || ne.HealthCheck.MemoryThreshold != 1073741824 {
		t.Errorf("node exporter entry: %+v", ne.HealthCheck)
	}
	if custom.IsEnabled() || custom.Restart.Policy != RestartNever {
		t.Errorf("custom agent: enabled %v policy %q", custom.IsEnabled(), custom.Restart.Policy)
	}
	if p, err := fb.Restart.Config.Policy(); err != nil || p.Ceiling(2) != 20*time.Second {
		t.Errorf("filebeat backoff: %v %v", p, err)
	}
}

func TestDaemonConfigErrorsNameAgentAndKey(t *testing.T) {
	tests := map[string]string{
		"agents:\n- id: a\n  restart:\n    max_retries: lots\n":                                                     "id a",
		"agents:\n- id: a\n- id: b\n  stop_timeout: forever\n":                                                      `id b): duration "forever"`,
		"agents:\n- id: a\n  restart:\n    polcy: always\n":                                                         `unknown field "polcy"`,
		"agent_defaults:\n  restart:\n    backoff_base: 1m\nagents:\n- id: x\n  restart:\n    backoff_base: soon\n": `id x): duration "soon"`,
	}
	for doc, want := range tests {
		_, err := decodeDaemonConfig([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decode %q: %v, want an error containing %q", doc, err, want)
		}
	}
	_, err := decodeDaemonConfig([]byte("agents:\n- id: a\n  restart:\n    max_retries: lots\n"))
	if !strings.Contains(err.Error(), "restart.max_retries") {
		t.Errorf("type error does not name the key: %v", err)
	}
}

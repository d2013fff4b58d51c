package edgedaemon

import (
	"github.com/tend-dev/tend/supervisor"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The daemon config format's two shapes decode as their users wrote them.
func TestDaemonConfigsDecode(t *testing.T) {
	multi, err := loadConfig("testdata/daemon-agents.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(multi.Agents) != 4 || len(multi.Warnings) != 0 {
		t.Fatalf("multi-agent form: %d agents, warnings %v", len(multi.Agents), multi.Warnings)
	}
	tg := multi.Agents[1]
	if tg.Identity() != "telegraf-metrics" || tg.Restart.MaxRestarts != 10 || tg.Restart.Policy != "on-failure" ||
		tg.HealthCheck.CPUThreshold != 80 || tg.HealthCheck.HeartbeatTimeout.Std() != 90*time.Second {
		t.Fatalf("telegraf with agent_defaults: %+v", tg)
	}
	if fb := multi.Agents[0]; fb.SocketPath != "/var/run/daemon/agents/filebeat-logs.sock" || fb.HealthCheck.MemoryThreshold != 524288000 {
		t.Fatalf("filebeat: %+v", fb)
	}
	if multi.Agents[3].IsEnabled() {
		t.Fatal("custom-agent-001 is disabled in the file")
	}

	single, err := loadConfig("testdata/daemon-single-agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := single.Agents[0]
	if len(single.Agents) != 1 || a.Identity() != "agent" || a.Path != "/usr/bin/prometheus-node-exporter" ||
		a.Restart.MaxRestarts != 5 || a.Restart.Base.Std() != 5*time.Second || a.SocketPath != "/var/run/daemon/agent.sock" {
		t.Fatalf("single-agent form: %+v", single.Agents)
	}
}

func TestAgentsWinOverAgentWithWarning(t *testing.T) {
	multi, _ := os.ReadFile("testdata/daemon-agents.yaml")
	single, _ := os.ReadFile("testdata/daemon-single-agent.yaml")
	c, err := parseConfig(append(append(multi, '\n'), single...))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Agents) != 4 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "using agents") {
		t.Fatalf("%d agents, warnings %v", len(c.Agents), c.Warnings)
	}
}

func TestBadConfigNamesAgentAndKey(t *testing.T) {
	for doc, want := range map[string]string{
		"agents:\n- id: a\n  restart:\n    max_retries: many\n":                 `"agents[0].restart.max_retries" (line 4)`,
		"agents:\n- id: a\n  health_check:\n    interval: often\n":              `"often"`,
		"agents:\n- id: a\n  helth_check: {}\n":                                 `unknown field "helth_check"`,
		"agents:\n- id: a\n- id: a\n":                                           `"a" is used twice`,
		"agents:\n- id: a/b\n":                                                  "path separators",
		"agent_defaults: {}\n":                                                  "no agents",
		"agents:\n- id: a\nextra: 1\n":                                          `unknown field "extra"`,
		"agents:\n- id: x\n  restart:\n    backoff_base: 10s\n  bad: 1\n":       `"agents[0].bad" (line 5)`,
		"agent_defaults:\n  restart:\n    backoff_bsae: 1s\nagents:\n- id: a\n": `"agent_defaults.restart.backoff_bsae" (line 3): json: unknown field "backoff_bsae"; did you mean "backoff_base"?`,
		"agent_defaults:\n  start_timeout: soon\nagents:\n- id: a\n":            `"agent_defaults.start_timeout" (line 2)`,
	} {
		_, err := parseConfig([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", doc, err, want)
		}
	}
}

// The service protocol's keys decode per agent, and a bad value is named
// with its agent and key.
func TestServiceProtocolKeys(t *testing.T) {
	c, err := parseConfig([]byte(`agents:
- id: cache
  binary_path: /bin/sh
  notify_ready: true
  reload_mode: notify
  fd_store_max: 8
  listen: ["tcp://127.0.0.1:6380", "unix:///run/cache.sock"]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Agents[0].Spec
	if !s.NotifyReady || s.ReloadMode != supervisor.ReloadByNotify || s.FDStoreMax != 8 || len(s.Listen) != 2 {
		t.Fatalf("decoded %+v", s)
	}
	for doc, want := range map[string]string{
		"agents:\n- id: a\n  binary_path: /bin/sh\n  reload_mode: graceful\n":                      "reload_mode",
		"agents:\n- id: a\n  binary_path: /bin/sh\n  reload_mode: notify\n":                        "needs notify_ready",
		"agents:\n- id: a\n  binary_path: /bin/sh\n  listen: [\"localhost:80\"]\n":                 "listen[0]",
		"agents:\n- id: a\n  binary_path: /bin/sh\n  notify_ready: true\n  fd_store_max: 100000\n": "fd_store_max",
	} {
		c, err := parseConfig([]byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		// Keys are checked where every agent is, in the Group's Apply.
		_, err = supervisor.New(c.Agents[0].Spec)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `agent "a"`) {
			t.Errorf("%q: %v, want an error naming agent a and %q", doc, err, want)
		}
	}
}

// The shipped example configs decode.
func TestShippedConfigsDecode(t *testing.T) {
	c, err := loadConfig(filepath.Join("..", "configs", "exporters.yaml"))
	if err != nil || len(c.Agents) != 2 {
		t.Fatalf("exporters.yaml: %v (%d agents)", err, len(c.Agents))
	}
	d, err := prepareDemo(t.TempDir())
	if err != nil || len(d.Agents) != 8 {
		t.Fatalf("demo config: %v (%d agents)", err, len(d.Agents))
	}
}

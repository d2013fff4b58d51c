package supervisor

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/config/decode"
	"sigs.k8s.io/yaml"
)

func TestNewRejectsBadSpecs(t *testing.T) {
	notExec := tempFile(t, "plain")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	dirAsFile := tempFile(t, "file")
	os.WriteFile(dirAsFile, nil, 0o644)
	good := func() Spec { return Spec{Name: "a", Path: agentPath} }
	tests := []struct {
		name      string
		edit      func(*Spec)
		wantField string
		wantText  string
	}{
		{"empty name", func(s *Spec) { s.Name = "" }, "name", "empty"},
		{"name with slash", func(s *Spec) { s.Name = "a/b" }, "name", "separators"},
		{"name with newline", func(s *Spec) { s.Name = "a\nb" }, "name", "control"},
		{"name dot dot", func(s *Spec) { s.Name = ".." }, "name", ""},
		{"empty binary", func(s *Spec) { s.Path = "" }, "binary_path", "empty"},
		{"relative binary", func(s *Spec) { s.Path = "bin/agent" }, "binary_path", "absolute"},
		{"missing binary", func(s *Spec) { s.Path = "/nonexistent/agent" }, "binary_path", "does not exist"},
		{"binary is a directory", func(s *Spec) { s.Path = "/" }, "binary_path", "regular file"},
		{"binary not executable", func(s *Spec) { s.Path = notExec }, "binary_path", "not executable"},
		{"missing work dir", func(s *Spec) { s.Dir = "/nonexistent/dir" }, "work_dir", "does not exist"},
		{"work dir is a file", func(s *Spec) { s.Dir = dirAsFile }, "work_dir", "not a directory"},
		{"env without =", func(s *Spec) { s.Env = []string{"FOO"} }, "env", "KEY=value"},
		{"negative start_seconds", func(s *Spec) { s.StartSeconds = -1 }, "start_seconds", "negative"},
		{"negative stop_timeout", func(s *Spec) { s.StopTimeout = config.Duration(-time.Second) }, "stop_timeout", "-1s"},
		{"negative reset_after", func(s *Spec) { s.Restart.ResetAfter = -1 }, "restart.reset_after", "negative"},
		{"negative window", func(s *Spec) { s.Restart.RestartWindow = -1 }, "restart.restart_window", "negative"},
		{"bad policy", func(s *Spec) { s.Restart.Policy = "sometimes" }, "restart.policy", "sometimes"},
		{"bad exit code", func(s *Spec) { s.Restart.SuccessExitCodes = []int{300} }, "restart.success_exit_codes/prevent_exit_codes", "0-255"},
		{"backoff max below base", func(s *Spec) {
			s.Restart.Config = backoff.Config{Base: config.Duration(10 * time.Second), Max: config.Duration(time.Second)}
		}, "restart.backoff_max", "backoff_base"},
		{"unknown user", func(s *Spec) { s.User = "no-such-user-here" }, "user", "no such user"},
		{"unknown group", func(s *Spec) { s.Group = "no-such-group-here" }, "group", "no such group"},
		{"bad condition", func(s *Spec) { s.DependsOn = map[string]Dependency{"b": {Condition: "up"}} }, "depends_on.b.condition", `"ready"`},
		{"bad propagate", func(s *Spec) { s.DependsOn = map[string]Dependency{"b": {Propagate: "kill"}} }, "depends_on.b.propagate", `"restart"`},
		{"self dependency", func(s *Spec) { s.DependsOn = map[string]Dependency{"a": {}} }, "depends_on.a", "itself"},
		{"dependency without a Group", func(s *Spec) { s.DependsOn = map[string]Dependency{"b": {}} }, "depends_on", "no Group"},
		{"task restart always", func(s *Spec) { s.Task = &TaskSpec{}; s.Restart.Policy = RestartAlways }, "restart.policy", "on-failure"},
		{"task with notify", func(s *Spec) { s.Task = &TaskSpec{}; s.NotifyReady = true }, "notify_ready", "exits"},
		{"bad schedule", func(s *Spec) { s.Task = &TaskSpec{Schedule: "every hour"} }, "task.schedule", "every hour"},
		{"never due schedule", func(s *Spec) { s.Task = &TaskSpec{Schedule: "0 0 30 2 *"} }, "task.schedule", "never due"},
		{"jitter without schedule", func(s *Spec) { s.Task = &TaskSpec{Jitter: config.Duration(time.Minute)} }, "task.jitter", "schedule"},
		{"negative task timeout", func(s *Spec) { s.Task = &TaskSpec{Timeout: -1} }, "task.timeout", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := good()
			tt.edit(&spec)
			p, err := New(spec)
			var fe *config.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("New = %v, %v; want a FieldError on %q", p, err, tt.wantField)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error %q does not mention %q", err, tt.wantText)
			}
		})
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	p, err := New(Spec{Name: "a", Path: agentPath})
	if err != nil {
		t.Fatal(err)
	}
	c := p.cfg
	if c.startWait != time.Second || c.stopTimeout != 30*time.Second || c.stopSignal.String() != "terminated" ||
		c.reloadSignal.String() != "hangup" || c.policy != RestartAlways || c.maxRestarts != 10 ||
		c.window != 10*time.Minute || c.resetAfter != 5*time.Minute || c.retryFailedAfter != 30*time.Minute ||
		c.tailBytes != 4096 || !slices.Equal(c.contract.env, []string{defaultPath}) {
		t.Fatalf("defaults not applied: %+v", c)
	}
	if _, ok := c.backoff.(backoff.Exponential); !ok {
		t.Fatalf("default backoff is %T, want Exponential", c.backoff)
	}
}

// An agent entry in the shape users already write decodes straight into a
// Spec, durations as strings, restart keys nested.
func TestSpecDecodesDaemonConfigShape(t *testing.T) {
	doc := `
name: node-exporter
binary_path: /usr/bin/prometheus-node-exporter
args: ["--web.listen-address=:9100"]
work_dir: /var/lib/daemon/agents/node-exporter
env: ["GOMAXPROCS=1"]
stop_signal: SIGINT
stop_timeout: 10s
start_seconds: 2s
restart:
  policy: on-failure
  max_retries: 5
  backoff_base: 5s
  backoff_max: 60s
  success_exit_codes: [3]
`
	var got Spec
	if err := yaml.UnmarshalStrict([]byte(doc), &got); err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Name: "node-exporter", Path: "/usr/bin/prometheus-node-exporter",
		Args: []string{"--web.listen-address=:9100"}, Dir: "/var/lib/daemon/agents/node-exporter",
		Env: []string{"GOMAXPROCS=1"}, StopSignal: 2,
		StopTimeout: config.Duration(10 * time.Second), StartSeconds: config.Duration(2 * time.Second),
		Restart: RestartSpec{Policy: RestartOnFailure, MaxRestarts: 5, SuccessExitCodes: []int{3},
			Config: backoff.Config{Base: config.Duration(5 * time.Second), Max: config.Duration(time.Minute)}},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Spec{}, "Logger")); diff != "" {
		t.Fatalf("decoded spec (-want +got):\n%s", diff)
	}
}

func TestSpecDecodeErrorsNameTheKey(t *testing.T) {
	for doc, want := range map[string]string{
		"name: a\nbogus: 1\n":                 `field "bogus" (line 2): json: unknown field "bogus"`,
		"name: a\nrestart:\n  max_retries: x": `field "restart.max_retries" (line 3)`,
		"name: a\nstop_timeout: 5 seconds\n":  `field "stop_timeout" (line 2): duration "5 seconds"`,
		"name: a\nstop_signal: SIGFOO\n":      `field "stop_signal" (line 2): signal "SIGFOO"`,
		"name: a\nrestart:\n  policy: [x]\n":  `field "restart.policy" (line 3)`,
		"name: a\nrestart:\n  max_retires: 3": `field "restart.max_retires" (line 3): json: unknown field "max_retires"; did you mean "max_retries"?`,
	} {
		var s Spec
		err := decode.Strict([]byte(doc), &s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decode %q: %v, want an error containing %s", doc, err, want)
		}
	}
}

// depends_on takes a condition or a {condition, propagate} object; task
// takes true or an object.
func TestDependsOnAndTaskKeys(t *testing.T) {
	doc := `name: exporter
binary_path: /bin/true
depends_on:
  collector: ready
  certs: {condition: completed_successfully, propagate: restart}
task:
  schedule: "@hourly"
  jitter: 5m
  timeout: 10m
`
	var s Spec
	if err := decode.Strict([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	want := map[string]Dependency{"collector": {Condition: ConditionReady}, "certs": {Condition: ConditionCompletedSuccessfully, Propagate: PropagateRestart}}
	if !maps.Equal(s.DependsOn, want) || s.Task == nil || *s.Task != (TaskSpec{Schedule: "@hourly", Jitter: config.Duration(5 * time.Minute), Timeout: config.Duration(10 * time.Minute)}) {
		t.Fatalf("decoded depends_on %v, task %+v", s.DependsOn, s.Task)
	}
	var plain Spec
	if err := decode.Strict([]byte("name: setup\nbinary_path: /bin/true\ntask: true\n"), &plain); err != nil || plain.Task == nil || *plain.Task != (TaskSpec{}) {
		t.Fatalf("task: true: %v, %+v", err, plain.Task)
	}
	for doc, want := range map[string]string{
		"name: a\ntask: false\n":                               "leave the key out",
		"name: a\ntask: {every: 5m}\n":                         `unknown field "every"`,
		"name: a\ndepends_on: {b: {condition: ready, x: 1}}\n": `unknown field "x"`,
	} {
		var s Spec
		if err := decode.Strict([]byte(doc), &s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("decode %q: %v, want an error containing %s", doc, err, want)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := Status{Name: "a", State: Backoff, Restarts: 2, Streak: 1, NextRestartAt: at,
		LastExit: &Exit{Code: -1, Signal: 9, Time: at, Ran: time.Second}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"a","state":"backoff","restarts":2,"streak":1,"last_exit":{"code":-1,"signal":"SIGKILL","time":"2026-01-02T03:04:05Z","ran":1000000000},"next_restart_at":"2026-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Status
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, back); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

// A disabled agent whose binary is not installed does not reject the set
// it is in; enabling it does, naming the key.
func TestDisabledAgentNeedsNoBinary(t *testing.T) {
	off := false
	spec := agentSpec(t)
	spec.Path, spec.Enabled = "/opt/not-installed/agent", &off
	if _, err := New(spec); err != nil {
		t.Fatalf("disabled agent without its binary: %v", err)
	}
	spec.Enabled = nil
	if _, err := New(spec); err == nil || !strings.Contains(err.Error(), "binary_path") {
		t.Fatalf("enabled agent without its binary: %v, want binary_path named", err)
	}
	spec.Path, spec.Enabled = "relative/agent", &off
	if _, err := New(spec); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("disabled agent with a relative path: %v", err)
	}
}

// The resources keys read as users write them, and a bad value names its
// key and line.
func TestResourcesKeys(t *testing.T) {
	var s Spec
	if err := decode.Strict([]byte("name: a\nbinary_path: /bin/true\nresources:\n  memory_max: 512Mi\n  memory_high: 400M\n  cpu: 500m\n  pids_max: 64\n"), &s); err != nil {
		t.Fatal(err)
	}
	want := Resources{MemoryMax: 512 << 20, MemoryHigh: 400e6, CPU: 0.5, PidsMax: 64}
	if s.Resources != want {
		t.Fatalf("decoded %+v, want %+v", s.Resources, want)
	}
	err := decode.Strict([]byte("name: a\nbinary_path: /bin/true\nresources:\n  memory_max: 12XB\n"), &s)
	if err == nil || !strings.Contains(err.Error(), `"resources.memory_max" (line 4)`) || !strings.Contains(err.Error(), "12XB") {
		t.Fatalf("bad quantity: %v, want the key, line and value named", err)
	}
}

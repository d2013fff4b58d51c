package health

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"sigs.k8s.io/yaml"
)

func fastConfig() Config {
	return Config{Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(10 * time.Millisecond),
		FailureThreshold: 3, SuccessThreshold: 2, Grace: config.Duration(100 * time.Millisecond)}
}

// runChecker runs c until the test ends.
func runChecker(t *testing.T, c *Checker) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestCheckerActsOnceAfterFailureThresholdThenGivesGrace(t *testing.T) {
	var failing atomic.Bool
	var checks atomic.Int64
	probe := ProbeFunc(func(context.Context) error {
		checks.Add(1)
		if failing.Load() {
			return errors.New("down")
		}
		return nil
	})
	actions := make(chan Report, 10)
	var c *Checker
	c, err := NewChecker(fastConfig(), Subject{Unhealthy: func(context.Context, uint64, string) error {
		failing.Store(false) // the "restart" heals it
		actions <- c.Report()
		return nil
	}}, Check{Name: "p", Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan Event, 10)
	defer c.Subscribe(func(e Event) { events <- e })()
	runChecker(t, c)
	time.Sleep(100 * time.Millisecond)
	if r := c.Report(); !r.Healthy || r.Probes[0].Successes == 0 {
		t.Fatalf("healthy probe: %+v", r)
	}
	failing.Store(true)
	var r Report
	select {
	case r = <-actions:
	case <-time.After(5 * time.Second):
		t.Fatal("no action after the probe kept failing")
	}
	if r.Healthy || r.Probes[0].Failures != 3 || r.Probes[0].LastError != "down" {
		t.Fatalf("report given to the action: %+v", r)
	}
	if e := <-events; e.Healthy || e.Probe != "p" {
		t.Fatalf("event %v, want p unhealthy", e)
	}
	before := checks.Load()
	time.Sleep(70 * time.Millisecond) // inside the 100ms grace
	if n := checks.Load() - before; n > 1 {
		t.Fatalf("%d checks during the grace period", n)
	}
	time.Sleep(200 * time.Millisecond)
	if r := c.Report(); !r.Healthy || r.Verdicts != 1 || len(actions) != 0 {
		t.Fatalf("after grace: %+v, %d more actions", r, len(actions))
	}
}

// A probe that keeps failing after the action is acted on again.
func TestCheckerActsAgainWhenStillFailing(t *testing.T) {
	var n atomic.Int64
	c, _ := NewChecker(fastConfig(), Subject{Unhealthy: func(context.Context, uint64, string) error { n.Add(1); return nil }},
		Check{Name: "dead", Probe: ProbeFunc(func(context.Context) error { return errors.New("dead") })})
	runChecker(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d actions, want repeated actions for a probe that never recovers", n.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A probe slower than Timeout fails; one slower than Interval never runs
// twice at once.
func TestCheckerTimeoutAndNoOverlap(t *testing.T) {
	var running, most atomic.Int64
	slow := ProbeFunc(func(ctx context.Context) error {
		now := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		time.Sleep(60 * time.Millisecond) // ignores ctx on purpose: a badly written probe
		return ctx.Err()
	})
	c, _ := NewChecker(fastConfig(), Subject{}, Check{Name: "slow", Probe: slow})
	runChecker(t, c)
	time.Sleep(400 * time.Millisecond)
	if most.Load() != 1 {
		t.Fatalf("%d concurrent runs of one probe", most.Load())
	}
	r := c.Report()
	if r.Healthy || !strings.Contains(r.Probes[0].LastError, "deadline") {
		t.Fatalf("a probe past its timeout must fail: %+v", r.Probes[0])
	}
}

func TestNewCheckerValidates(t *testing.T) {
	p := Check{Name: "p", Probe: ProbeFunc(func(context.Context) error { return nil })}
	for _, tt := range []struct {
		cfg   Config
		field string
	}{
		{Config{Interval: config.Duration(-time.Second)}, "interval"},
		{Config{Timeout: config.Duration(20 * time.Second)}, "timeout"},
		{Config{FailureThreshold: -1}, "failure_threshold"},
	} {
		_, err := NewChecker(tt.cfg, Subject{}, p)
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%+v: %v, want a FieldError on %s", tt.cfg, err, tt.field)
		}
	}
	if _, err := NewChecker(Config{}, Subject{}); err == nil {
		t.Error("a checker without probes was accepted")
	}
	if _, err := NewChecker(Config{}, Subject{}, p, p); err == nil {
		t.Error("duplicate probe names were accepted")
	}
}

// The health_check section of the daemon config format decodes into a Spec whose probes match.
func TestSpecFromDaemonConfig(t *testing.T) {
	doc := "interval: 30s\nheartbeat_timeout: 90s\ncpu_threshold: 50.0\nmemory_threshold: 524288000\nhttp_endpoint: http://127.0.0.1:9100/metrics\n"
	var s Spec
	if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	checks, err := s.Checks(func() int { return 1 }, NewHeartbeat(s.HeartbeatTimeout.Std()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range checks {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "process,heartbeat,resources,http" || s.Interval.Std() != 30*time.Second {
		t.Fatalf("probes %v, interval %v", names, s.Interval)
	}
	if _, err := NewChecker(s.Config, Subject{}, checks...); err != nil {
		t.Fatalf("daemon config timing rejected: %v", err)
	}
	if _, err := s.Checks(func() int { return 1 }, nil); err == nil {
		t.Fatal("heartbeat_timeout without a heartbeat source accepted")
	}
}

// Validate names each bad key of a health_check section.
func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		key  string
	}{
		{Spec{Config: Config{Interval: config.Duration(-time.Second)}}, "interval"},
		{Spec{Config: Config{Interval: config.Duration(time.Second), Timeout: config.Duration(time.Second)}}, "timeout"},
		{Spec{HTTPEndpoint: "127.0.0.1:9100/metrics"}, "http_endpoint"},
		{Spec{HTTPEndpoint: "ftp://host/x"}, "http_endpoint"},
		{Spec{TCPAddress: "localhost"}, "tcp_address"},
		{Spec{CPUThreshold: -1}, "cpu_threshold"},
		{Spec{HeartbeatTimeout: config.Duration(-1)}, "heartbeat_timeout"},
		{Spec{Exec: []string{"check.sh"}}, "exec"},
	} {
		err := tc.spec.Validate()
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.key {
			t.Errorf("%+v: %v, want a field error on %s", tc.spec, err, tc.key)
		}
	}
	if err := (Spec{HTTPEndpoint: "http://127.0.0.1:9100/metrics", TCPAddress: "127.0.0.1:22"}).Validate(); err != nil {
		t.Errorf("a good spec: %v", err)
	}
}

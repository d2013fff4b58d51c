package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/metrics"
	"github.com/tend-dev/tend/supervisor"
)

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newGroup(t *testing.T) *supervisor.Group {
	t.Helper()
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Name: strings.ToLower(t.Name())}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(ctxTimeout(t, 20*time.Second)) })
	return g
}

func agent(name string, args ...string) supervisor.Spec {
	return supervisor.Spec{Name: name, Path: agentPath, Args: args, StartSeconds: config.Duration(50 * time.Millisecond),
		Restart: supervisor.RestartSpec{Backoff: backoff.None()}}
}

// scrape GETs url and parses the text exposition with Prometheus' own
// parser; it returns the body too.
func scrape(t *testing.T, url string) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, body)
	}
	return families, body
}

// value is the sample of family whose labels include want; it fails the
// test when there is none.
func value(t *testing.T, families map[string]*dto.MetricFamily, family string, want ...string) float64 {
	t.Helper()
	v, ok := lookup(families, family, want...)
	if !ok {
		t.Fatalf("no sample %s%v", family, want)
	}
	return v
}

func lookup(families map[string]*dto.MetricFamily, family string, want ...string) (float64, bool) {
	f := families[family]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(want); i += 2 {
			if !slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == want[i] && l.GetValue() == want[i+1] }) {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount()), true
		}
	}
	return 0, false
}

// A real /metrics endpoint over a Group of real agents: a healthy
// spinner, a crash loop that gave up, a stopped agent, a probe that
// fails and a log file; every figure is what the Group, the Checker and
// the Rotator say, the exposition parses and lints clean, and
// promtool accepts it where installed.
func TestScrapeOfARealGroup(t *testing.T) {
	g := newGroup(t)
	dir := t.TempDir()
	rot, err := logs.New(logs.Options{Path: filepath.Join(dir, "spinner.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer rot.Close()
	spinner := agent("spinner", "-spin", "-lines", "50", "-fork", "2")
	spinner.Stdout = rot.Stream("stdout")
	crashy := agent("crashy", "-after", "10ms", "-exit", "3")
	crashy.StartSeconds = config.Duration(time.Millisecond)
	crashy.Restart = supervisor.RestartSpec{MaxRestarts: 2, Backoff: backoff.None(), RetryFailedAfter: -1}
	idle := agent("idle")
	for _, s := range []supervisor.Spec{spinner, crashy, idle} {
		if _, err := g.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Start(ctxTimeout(t, 10*time.Second), "spinner"); err != nil {
		t.Fatal(err)
	}
	g.Start(ctxTimeout(t, 10*time.Second), "crashy") //nolint:errcheck // it crash-loops to Failed
	for p, _ := g.Get("crashy"); p.Status().State != supervisor.Failed; time.Sleep(10 * time.Millisecond) {
	}

	c := metrics.New(g, metrics.Options{})
	checker, err := health.NewChecker(health.Config{Interval: config.Duration(20 * time.Millisecond), Timeout: config.Duration(10 * time.Millisecond), FailureThreshold: 1000},
		health.Subject{}, health.Check{Name: "http", Probe: health.ProbeFunc(func(context.Context) error { return errors.New("refused") })})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { checker.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	defer c.AddChecker("spinner", checker)()
	defer c.AddRotator("spinner", rot)()

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	for checker.Report().Probes[0].Checks < 3 || rot.Stats().BytesWritten == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // the spinner spends CPU
	families, body := scrape(t, srv.URL)

	sp, _ := g.Get("spinner")
	st := sp.Status()
	if v := value(t, families, "tend_agent_up", "agent", "spinner"); v != 1 {
		t.Errorf("spinner up %v", v)
	}
	if v := value(t, families, "tend_agent_start_time_seconds", "agent", "spinner"); v != float64(st.StartedAt.UnixNano())/1e9 {
		t.Errorf("spinner start time %v, Status says %v", v, st.StartedAt)
	}
	for _, s := range supervisor.States() {
		want := 0.0
		if s == supervisor.Failed {
			want = 1
		}
		if v := value(t, families, "tend_agent_state", "agent", "crashy", "state", s.String()); v != want {
			t.Errorf("crashy state{%s} = %v, want %v", s, v, want)
		}
	}
	if v := value(t, families, "tend_agent_restarts_total", "agent", "crashy", "reason", "crash"); v != 2 {
		t.Errorf("crashy crash restarts %v, want 2", v)
	}
	if v := value(t, families, "tend_agent_restarts_total", "agent", "crashy", "reason", "unhealthy"); v != 0 {
		t.Errorf("crashy unhealthy restarts %v, want 0", v)
	}
	if v := value(t, families, "tend_agent_last_exit_code", "agent", "crashy"); v != 3 {
		t.Errorf("crashy last exit code %v, want 3", v)
	}
	if v := value(t, families, "tend_agent_last_exit_signal", "agent", "crashy"); v != 0 {
		t.Errorf("crashy last exit signal %v, want 0", v)
	}
	if _, ok := lookup(families, "tend_agent_last_exit_code", "agent", "idle"); ok {
		t.Error("idle, never run, has a last exit code")
	}
	if _, ok := lookup(families, "tend_agent_start_time_seconds", "agent", "idle"); ok {
		t.Error("idle, never run, has a start time")
	}
	if v := value(t, families, "tend_health_probe_healthy", "agent", "spinner", "probe", "http"); v != 1 {
		t.Errorf("probe healthy %v: FailureThreshold 1000 not reached yet", v) // judged healthy until the threshold
	}
	if v := value(t, families, "tend_health_check_failures_total", "agent", "spinner", "probe", "http"); v < 3 {
		t.Errorf("check failures %v, want >= 3", v)
	}
	if v := value(t, families, "tend_health_check_duration_seconds", "agent", "spinner", "probe", "http"); v < 3 {
		t.Errorf("check count %v, want >= 3", v)
	}
	if v := value(t, families, "tend_log_written_bytes_total", "agent", "spinner", "file", "spinner.log"); v != float64(rot.Stats().BytesWritten) || v == 0 {
		t.Errorf("log bytes %v, Rotator says %d", v, rot.Stats().BytesWritten)
	}
	if v := value(t, families, "tend_events_dropped_total"); v != 0 {
		t.Errorf("events dropped %v", v)
	}
	if _, err := g.CgroupParent(); err == nil {
		if v := value(t, families, "tend_agent_processes", "agent", "spinner"); v != 3 {
			t.Errorf("spinner's tree holds %v processes, want 3 (itself and 2 forked)", v)
		}
		if v := value(t, families, "tend_agent_cpu_seconds_total", "agent", "spinner"); v < 0.05 {
			t.Errorf("spinner's tree used %vs of CPU spinning", v)
		}
	} else if _, ok := lookup(families, "tend_agent_processes"); ok {
		t.Error("tree usage reported without cgroups")
	}

	// Only fixed label names, and the agent label on every per-agent family.
	for name, f := range families {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if !slices.Contains([]string{"agent", "state", "reason", "probe", "file"}, l.GetName()) {
					t.Errorf("%s has label %s", name, l.GetName())
				}
			}
		}
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
	promtool(t, body)

	// An agent removed vanishes at the next scrape, nothing else does.
	if err := g.Remove(ctxTimeout(t, 10*time.Second), "crashy"); err != nil {
		t.Fatal(err)
	}
	families, _ = scrape(t, srv.URL)
	if _, ok := lookup(families, "tend_agent_up", "agent", "crashy"); ok {
		t.Error("a removed agent is still exported")
	}
	value(t, families, "tend_agent_up", "agent", "idle")
}

// promtool runs Prometheus' own checker on an exposition, where the
// prometheus package is installed.
func promtool(t *testing.T, body []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed (Debian package prometheus); skipping its check")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// An agent killed by a signal exports its number and code -1; one in
// Backoff accrues backoff time between scrapes.
func TestSignalExitAndBackoffTime(t *testing.T) {
	g := newGroup(t)
	spec := agent("slow-restart")
	spec.Restart = supervisor.RestartSpec{Backoff: backoff.None(), FirstDelay: config.Duration(time.Hour)}
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(p.Status().PID, syscall.SIGKILL)
	for p.Status().State != supervisor.Backoff {
		time.Sleep(5 * time.Millisecond)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.New(g, metrics.Options{NoTreeUsage: true}))
	get := func(name string) float64 {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*dto.MetricFamily{}
		for _, f := range families {
			m[f.GetName()] = f
		}
		return value(t, m, name, "agent", "slow-restart")
	}
	if code, sig := get("tend_agent_last_exit_code"), get("tend_agent_last_exit_signal"); code != -1 || sig != float64(syscall.SIGKILL) {
		t.Fatalf("exit code %v signal %v, want -1 and 9", code, sig)
	}
	first := get("tend_agent_backoff_seconds_total")
	time.Sleep(50 * time.Millisecond)
	if second := get("tend_agent_backoff_seconds_total"); second-first < 0.05 {
		t.Fatalf("backoff time went from %v to %v in 50ms", first, second)
	}
}

// The package documentation lists every metric the Collector describes,
// and no other.
func TestDocListsEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	listed := regexp.MustCompile(`\btend_[a-z_]+`).FindAllString(string(doc), -1)
	slices.Sort(listed)
	listed = slices.Compact(listed)
	ch := make(chan *prometheus.Desc, 100)
	metrics.New(nil, metrics.Options{}).Describe(ch)
	close(ch)
	var described []string
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		described = append(described, fqName.FindStringSubmatch(d.String())[1])
	}
	slices.Sort(described)
	if !slices.Equal(listed, described) {
		t.Fatalf("doc.go lists %v\nthe Collector describes %v", listed, described)
	}
}

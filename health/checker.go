package health

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/notify"
)

// Config times a Checker. Zero values take the Kubernetes defaults.
type Config struct {
	// InitialDelay is the wait before the first check. Default 0.
	InitialDelay config.Duration `json:"initial_delay,omitempty"`
	// Interval is the time between checks. Default 10s.
	Interval config.Duration `json:"interval,omitempty"`
	// Timeout bounds each probe's check; it must be shorter than Interval.
	// Default 1s.
	Timeout config.Duration `json:"timeout,omitempty"`
	// SuccessThreshold is how many consecutive successes make a failing
	// probe healthy again. Default 1.
	SuccessThreshold int `json:"success_threshold,omitempty"`
	// FailureThreshold is how many consecutive failures make a probe
	// unhealthy. Default 3.
	FailureThreshold int `json:"failure_threshold,omitempty"`
	// Grace is how long the Checker waits after its action before judging
	// again: the restarted agent deserves its start time. Default 30s.
	Grace config.Duration `json:"grace,omitempty"`
}

// Defaults of Config.
const (
	DefaultInterval         = 10 * time.Second
	DefaultTimeout          = time.Second
	DefaultSuccessThreshold = 1
	DefaultFailureThreshold = 3
	DefaultGrace            = 30 * time.Second
)

func (c *Config) validate() error {
	for _, d := range []struct {
		key string
		v   config.Duration
	}{{"initial_delay", c.InitialDelay}, {"interval", c.Interval}, {"timeout", c.Timeout}, {"grace", c.Grace}} {
		if d.v < 0 {
			return config.Invalid(d.key, d.v, "must not be negative")
		}
	}
	switch {
	case c.SuccessThreshold < 0:
		return config.Invalid("success_threshold", c.SuccessThreshold, "must not be negative")
	case c.FailureThreshold < 0:
		return config.Invalid("failure_threshold", c.FailureThreshold, "must not be negative")
	}
	c.Interval = cmp.Or(c.Interval, config.Duration(DefaultInterval))
	c.Timeout = cmp.Or(c.Timeout, config.Duration(DefaultTimeout))
	c.SuccessThreshold = cmp.Or(c.SuccessThreshold, DefaultSuccessThreshold)
	c.FailureThreshold = cmp.Or(c.FailureThreshold, DefaultFailureThreshold)
	c.Grace = cmp.Or(c.Grace, config.Duration(DefaultGrace))
	if c.Timeout >= c.Interval {
		return config.Invalid("timeout", c.Timeout, fmt.Sprintf("must be shorter than interval (%v)", c.Interval))
	}
	return nil
}

// Check is a named Probe.
type Check struct {
	Name  string // unique within a Checker; names the probe in reports and events
	Probe Probe  // what to run
}

// Subject is the agent a Checker judges, as two functions of the host's
// supervisor: with tend, supervisor.Process's CurrentRun and Unhealthy
// (health.Subject{Run: p.CurrentRun, Unhealthy: p.Unhealthy}). The
// verdict goes to the supervisor, which decides what it means: restart
// under the agent's policy, backoff and restart limit, or nothing when the
// run it names is over. The zero Subject makes a report-only Checker that
// always judges.
type Subject struct {
	// Run returns the current run of the agent and whether it can be
	// judged (it is Running). While it cannot, the Checker probes
	// nothing and reports not applicable; a new run is judged afresh,
	// after Grace.
	Run func() (run uint64, running bool)
	// Unhealthy receives the verdict that run turned unhealthy, with the
	// failing probes as reason. It runs on the Checker's goroutine: no
	// probe runs until it returns.
	Unhealthy func(ctx context.Context, run uint64, reason string) error
	// Healthy, if set, is told once per run that the run is proven
	// healthy: every probe passed SuccessThreshold checks in a row in it
	// (with tend, supervisor.Process.Healthy, which a dependency's
	// "healthy" condition waits for). It runs on the Checker's goroutine.
	Healthy func(ctx context.Context, run uint64) error
}

// ProbeReport is the state of one probe.
type ProbeReport struct {
	Name      string    `json:"name"`                 // the Check's name
	Healthy   bool      `json:"healthy"`              // the probe's judged state, after thresholds
	LastError string    `json:"last_error,omitempty"` // why the last check failed; empty after a success
	LastCheck time.Time `json:"last_check,omitzero"`  // when the last check ended
	// Successes and Failures count the current run of equal results.
	Successes  int       `json:"successes"`            // consecutive successes
	Failures   int       `json:"failures"`             // consecutive failures
	LastChange time.Time `json:"last_change,omitzero"` // when Healthy last flipped
	// Checks and CheckFailures count every check that ended, and those
	// that failed, over the Checker's life (every run of the agent);
	// CheckTime is the time they took in all, LastDuration the latest's.
	Checks        int64         `json:"checks"`
	CheckFailures int64         `json:"check_failures"`
	CheckTime     time.Duration `json:"check_time"`
	LastDuration  time.Duration `json:"last_duration"`
}

// Report is a Checker's state: healthy when the agent can be judged and
// every probe is healthy.
type Report struct {
	Healthy bool `json:"healthy"`
	// Applicable is false while the Subject's agent is not Running
	// (stopped, failed, backing off, starting): nothing is judged, and
	// the agent is not reported healthy.
	Applicable bool `json:"applicable"`
	// Run is the run judged (Subject.Run), 0 without a Subject.
	Run    uint64        `json:"run,omitempty"`
	Probes []ProbeReport `json:"probes"` // in the order the checks were given
	// Verdicts counts the unhealthy verdicts the Subject took.
	Verdicts int `json:"verdicts"`
	// Proven is true once every probe has passed SuccessThreshold checks
	// in a row in the run judged; a new run starts unproven.
	Proven bool `json:"proven,omitempty"`
}

// Reason lists the failing probes and their last errors, as a verdict
// gives them.
func (r Report) Reason() string {
	var parts []string
	for _, p := range r.Probes {
		if !p.Healthy {
			parts = append(parts, p.Name+": "+p.LastError)
		}
	}
	return strings.Join(parts, "; ")
}

// Event is a probe turning healthy or unhealthy.
type Event struct {
	Probe   string    // the Check's name
	Healthy bool      // the new state
	Err     string    // the failure that made it unhealthy; empty when healthy
	Time    time.Time // when the deciding check ended
}

// String formats the event as `probe "heartbeat": unhealthy (no heartbeat for 1m31s)`.
func (e Event) String() string {
	if e.Healthy {
		return fmt.Sprintf("probe %q: healthy", e.Probe)
	}
	return fmt.Sprintf("probe %q: unhealthy (%s)", e.Probe, e.Err)
}

// Checker runs probes and gives its Subject a verdict when the agent
// turns unhealthy.
type Checker struct {
	cfg     Config
	checks  []Check
	subject Subject
	log     logr.Logger

	mu     sync.Mutex
	report Report
	subs   notify.List[Event]
}

// NewChecker validates cfg and returns a Checker of subject over checks.
// Errors name the config key at fault, or a check without a name or probe.
func NewChecker(cfg Config, subject Subject, checks ...Check) (*Checker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(checks) == 0 {
		return nil, config.Invalid("checks", 0, "need at least one probe")
	}
	c := &Checker{cfg: cfg, checks: checks, subject: subject, report: Report{Healthy: true, Applicable: true}}
	seen := map[string]bool{}
	for i, ch := range checks {
		if ch.Name == "" || ch.Probe == nil || seen[ch.Name] {
			return nil, config.Invalid(fmt.Sprintf("checks[%d]", i), ch.Name, "needs a unique name and a probe")
		}
		seen[ch.Name] = true
		c.report.Probes = append(c.report.Probes, ProbeReport{Name: ch.Name, Healthy: true})
	}
	return c, nil
}

// WithLogger sets the logger of the Checker before Run and returns it.
func (c *Checker) WithLogger(log logr.Logger) *Checker {
	c.log = log
	return c
}

// Report returns the current state.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.report
	r.Probes = append([]ProbeReport(nil), r.Probes...)
	return r
}

// Subscribe calls fn with each probe's transitions, in order, on a
// goroutine of its own (dropping the oldest beyond 1024 pending).
func (c *Checker) Subscribe(fn func(Event)) (cancel func()) {
	return c.subs.Add(func(e Event, _ int) { fn(e) }, Event.String, c.log)
}

type result struct {
	index int
	run   uint64 // the run probed
	err   error
	at    time.Time     // when it ended
	took  time.Duration // how long it took
}

// Run checks until ctx ends, then waits for running probes (which ctx
// cancels) and returns nil.
func (c *Checker) Run(ctx context.Context) error {
	results := make(chan result, len(c.checks))
	running := make([]bool, len(c.checks))
	inFlight := 0
	defer func() {
		for ; inFlight > 0; inFlight-- {
			<-results
		}
	}()
	tick := time.NewTimer(c.cfg.InitialDelay.Std())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			run, judge := c.follow()
			if !judge {
				tick.Reset(c.cfg.Interval.Std())
				continue
			}
			if run != c.judgedRun() {
				c.restart(run) // a new run deserves its start time
				tick.Reset(c.cfg.Grace.Std())
				continue
			}
			for i, ch := range c.checks {
				if running[i] {
					continue // never two runs of one probe at once
				}
				running[i] = true
				inFlight++
				go func() {
					pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.Std())
					defer cancel()
					began := time.Now()
					err := ch.Probe.Check(pctx)
					results <- result{index: i, run: run, err: err, at: time.Now(), took: time.Since(began)}
				}()
			}
			tick.Reset(c.cfg.Interval.Std())
		case r := <-results:
			running[r.index] = false
			inFlight--
			turnedUnhealthy, proven := c.record(r)
			if turnedUnhealthy && c.subject.Unhealthy != nil {
				c.act(ctx, tick)
			}
			if proven && c.subject.Healthy != nil {
				if err := c.subject.Healthy(ctx, r.run); err != nil {
					c.log.Info("healthy run not taken", "run", r.run, "reason", err.Error())
				}
			}
		}
	}
}

// follow asks the Subject which run is current and whether it can be
// judged; a run that cannot is reported not applicable.
func (c *Checker) follow() (run uint64, judge bool) {
	if c.subject.Run == nil {
		return 0, true
	}
	run, running := c.subject.Run()
	if !running {
		c.mu.Lock()
		c.report.Applicable, c.report.Healthy = false, false
		c.mu.Unlock()
		return run, false
	}
	if c.judgedRun() == 0 {
		c.restart(run) // the first run seen: InitialDelay was its start time
	}
	return run, true
}

// judgedRun is the run the report is about.
func (c *Checker) judgedRun() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.report.Run
}

// restart judges run afresh: every probe healthy with its counts cleared.
func (c *Checker) restart(run uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report.Run, c.report.Applicable, c.report.Healthy, c.report.Proven = run, true, true, false
	for i := range c.report.Probes {
		p := &c.report.Probes[i]
		p.Healthy, p.Successes, p.Failures = true, 0, 0
	}
}

// record applies one result and reports whether the agent as a whole just
// turned unhealthy, or was just proven healthy.
func (c *Checker) record(r result) (turnedUnhealthy, proven bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := &c.report.Probes[r.index]
	p.Checks++
	p.CheckTime += r.took
	p.LastDuration = r.took
	if r.err != nil {
		p.CheckFailures++
	}
	if r.run != c.report.Run || !c.report.Applicable {
		return false, false // a result about a run that is over
	}
	p.LastCheck = r.at
	wasHealthy := p.Healthy
	if r.err == nil {
		p.Successes++
		p.Failures = 0
		p.LastError = ""
		if !p.Healthy && p.Successes >= c.cfg.SuccessThreshold {
			p.Healthy = true
		}
	} else {
		p.Failures++
		p.Successes = 0
		p.LastError = r.err.Error()
		if p.Healthy && p.Failures >= c.cfg.FailureThreshold {
			p.Healthy = false
		}
	}
	if !c.report.Proven && r.err == nil && c.allPassed() {
		c.report.Proven, proven = true, true
	}
	if p.Healthy == wasHealthy {
		return false, proven
	}
	p.LastChange = r.at
	c.subs.Publish(Event{Probe: p.Name, Healthy: p.Healthy, Err: p.LastError, Time: r.at})
	overall := true
	for _, q := range c.report.Probes {
		overall = overall && q.Healthy
	}
	turnedUnhealthy = c.report.Healthy && !overall
	c.report.Healthy = overall
	return turnedUnhealthy, proven
}

// allPassed reports whether every probe has SuccessThreshold successes
// in a row; c.mu must be held.
func (c *Checker) allPassed() bool {
	for _, q := range c.report.Probes {
		if q.Successes < c.cfg.SuccessThreshold {
			return false
		}
	}
	return true
}

// act gives the Subject the verdict, then the agent Grace before the next
// check. The next run is judged afresh: every probe starts healthy again
// with its counts cleared, so one that keeps failing brings another
// verdict.
func (c *Checker) act(ctx context.Context, tick *time.Timer) {
	report := c.Report()
	c.log.Info("agent unhealthy; reporting it", "run", report.Run, "failing", report.Reason())
	err := c.subject.Unhealthy(ctx, report.Run, report.Reason())
	if err != nil {
		c.log.Info("verdict not taken", "run", report.Run, "reason", err.Error())
	}
	c.restart(report.Run)
	if err == nil {
		c.mu.Lock()
		c.report.Verdicts++
		c.mu.Unlock()
	}
	tick.Reset(c.cfg.Grace.Std())
}

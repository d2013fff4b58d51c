package metrics

import (
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/supervisor"
)

// Options tune a Collector. The zero value is ready.
type Options struct {
	// Namespace prefixes every metric's name; empty means "tend".
	Namespace string
	// NoTreeUsage leaves out the CPU, memory and process count of each
	// agent's tree, which cost a few cgroup file reads per agent and
	// scrape (the rest is read from memory).
	NoTreeUsage bool
}

// Collector exposes a supervisor.Group, and the health Checkers and log
// Rotators a host registers beside it, as Prometheus metrics. It reads
// snapshots when it is scraped (Group.List, Process.TreeUsage,
// Checker.Report, Rotator.Stats) and keeps no goroutine or state of its
// own between scrapes, so an agent added or removed shows up or vanishes
// at the next scrape. Labels are the agent's name and values from small
// fixed sets (states, restart causes, the host's probe and log names).
// It is safe for concurrent use.
type Collector struct {
	group *supervisor.Group
	usage bool
	d     descs

	mu       sync.Mutex
	checkers map[string]*health.Checker
	rotators map[logKey]*logs.Rotator
}

// logKey names a log file of an agent.
type logKey struct{ agent, file string }

// New returns a Collector for g; register it with a prometheus.Registerer.
func New(g *supervisor.Group, opts Options) *Collector {
	ns := opts.Namespace
	if ns == "" {
		ns = "tend"
	}
	return &Collector{group: g, usage: !opts.NoTreeUsage, d: newDescs(ns),
		checkers: map[string]*health.Checker{}, rotators: map[logKey]*logs.Rotator{}}
}

// AddChecker exports c's probes as the agent's health metrics until the
// returned remove is called (a later AddChecker for the agent replaces
// c, and then remove does nothing). An Attachment's Open adds the
// Checker it builds and removes it in its close function.
func (c *Collector) AddChecker(agent string, checker *health.Checker) (remove func()) {
	return register(c, c.checkers, agent, checker)
}

// AddRotator exports r's counters as those of the agent's log file (its
// base name is the file label) until the returned remove is called,
// as AddChecker does.
func (c *Collector) AddRotator(agent string, r *logs.Rotator) (remove func()) {
	return register(c, c.rotators, logKey{agent, filepath.Base(r.Path())}, r)
}

func register[K comparable, V comparable](c *Collector, m map[K]V, key K, v V) (remove func()) {
	c.mu.Lock()
	m[key] = v
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if m[key] == v {
			delete(m, key)
		}
	}
}

// Describe sends every metric's descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

// Collect sends the metrics of every agent of the Group as it is now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	b := &batch{ch: ch}
	statuses := c.group.List()
	usage := c.treeUsage(statuses)
	names := make(map[string]*dto.LabelPair, len(statuses))
	for i, st := range statuses {
		name := pair("agent", st.Name)
		names[st.Name] = name
		c.d.agent(b, name, st, now)
		if u, ok := usage[i]; ok {
			c.d.tree(b, name, u)
		}
	}
	b.counter(c.d.eventsDropped, float64(c.group.DroppedEvents()))
	c.mu.Lock()
	checkers := maps.Clone(c.checkers)
	rotators := maps.Clone(c.rotators)
	c.mu.Unlock()
	label := func(agent string) *dto.LabelPair {
		if name, ok := names[agent]; ok {
			return name
		}
		return pair("agent", agent) // registered for an agent no longer (or not yet) in the Group
	}
	for agent, checker := range checkers {
		c.d.health(b, label(agent), checker.Report())
	}
	for k, r := range rotators {
		c.d.log(b, label(k.agent), pair("file", k.file), r.Stats())
	}
}

// treeUsage reads the tree of every agent with a child, by index into
// statuses, on as many goroutines as there are CPUs: the reads are
// system calls, and a scrape of a thousand agents should not take them
// one after the other.
func (c *Collector) treeUsage(statuses []supervisor.Status) map[int]supervisor.TreeUsage {
	if !c.usage {
		return nil
	}
	var live []int
	for i, st := range statuses {
		if st.PID != 0 {
			live = append(live, i)
		}
	}
	out := make(map[int]supervisor.TreeUsage, len(live))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for chunk := range slices.Chunk(live, max(1, (len(live)+runtime.GOMAXPROCS(0)-1)/runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			for _, i := range chunk {
				p, ok := c.group.Get(statuses[i].Name)
				if !ok {
					continue
				}
				u, err := p.TreeUsage()
				if err != nil {
					continue // ErrNotContained: a process group's tree is not accounted; or the child just ended
				}
				mu.Lock()
				out[i] = u
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

package metrics_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/metrics"
	"github.com/tend-dev/tend/supervisor"
)

// BenchmarkScrape is one scrape of /metrics, exposition encoded, for a
// Group of 1,000 running `sleep` agents (contained where cgroups are),
// with each agent's tree read from its cgroup and without.
func BenchmarkScrape(b *testing.B) {
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Name: "bench-scrape"}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	defer g.Close(ctx)
	specs := make([]supervisor.Spec, 1000)
	for i := range specs {
		specs[i] = supervisor.Spec{Name: "agent-" + strconv.Itoa(i), Path: "/bin/sleep", Args: []string{"3600"},
			StartSeconds: config.Duration(10 * time.Millisecond)}
	}
	if _, err := g.Apply(ctx, specs); err != nil {
		b.Fatal(err)
	}
	// The floor: the registry and encoder alone, on as many prebuilt
	// series as the Collector sends without trees.
	b.Run("registry-floor-17002-series", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(newPrebuilt(17002))
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		}
	})
	for _, tc := range []struct {
		name string
		opts metrics.Options
	}{{"1000-agents", metrics.Options{}}, {"1000-agents-no-tree", metrics.Options{NoTreeUsage: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(metrics.New(g, tc.opts))
			h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
			b.ReportAllocs()
			series := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
				series = strings.Count(rec.Body.String(), "\n") - strings.Count(rec.Body.String(), "\n#")
			}
			b.ReportMetric(float64(series), "series")
		})
		// The Collector's own share: Collect into a channel, without the
		// registry's checks, sorting and encoding.
		b.Run(tc.name+"-collect-only", func(b *testing.B) {
			c := metrics.New(g, tc.opts)
			b.ReportAllocs()
			for b.Loop() {
				ch := make(chan prometheus.Metric, 1024)
				done := make(chan int)
				go func() {
					n := 0
					for range ch {
						n++
					}
					done <- n
				}()
				c.Collect(ch)
				close(ch)
				<-done
			}
		})
	}
}

// prebuilt is a collector of gauges made once, 17 a fake agent.
type prebuilt []prometheus.Metric

func newPrebuilt(n int) prebuilt {
	desc := make([]*prometheus.Desc, 17)
	for i := range desc {
		desc[i] = prometheus.NewDesc("floor_metric_"+strconv.Itoa(i), "A series of the floor.", []string{"agent"}, nil)
	}
	out := make(prebuilt, 0, n)
	for i := range n {
		out = append(out, prometheus.MustNewConstMetric(desc[i%17], prometheus.GaugeValue, 1, "agent-"+strconv.Itoa(i/17)))
	}
	return out
}

func (p prebuilt) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(p, ch) }

func (p prebuilt) Collect(ch chan<- prometheus.Metric) {
	for _, m := range p {
		ch <- m
	}
}

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

package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tend-dev/tend/metrics"
	"github.com/tend-dev/tend/supervisor"
)

// A host registers the Collector and serves /metrics; here one scrape is
// read back and the agent's lines printed.
func ExampleNew() {
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Disabled: true}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer g.Close(ctx)
	if _, err := g.Apply(ctx, []supervisor.Spec{{Name: "sleeper", Path: "/bin/sleep", Args: []string{"60"}}}); err != nil {
		panic(err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(g, metrics.Options{}))
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "tend_agent_up") || strings.HasPrefix(line, `tend_agent_restarts_total{agent="sleeper",reason="crash"}`) ||
			strings.HasPrefix(line, `tend_agent_state{agent="sleeper",state="running"}`) {
			fmt.Print(line)
		}
	}
	// Output:
	// tend_agent_restarts_total{agent="sleeper",reason="crash"} 0
	// tend_agent_state{agent="sleeper",state="running"} 1
	// tend_agent_up{agent="sleeper"} 1
}

package supervisor

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// BenchmarkGroup starts and stops N idle agents (`sleep 1000`, which exits
// on SIGTERM) per op, and reports the wall time of StartAll and StopAll, the
// host's RSS and goroutines per running agent, and StopAll's time against
// one agent's stop measured in the same run (parallel stop should cost
// about one stop, not N).
func BenchmarkGroup(b *testing.B) {
	sleep := benchBinary(b, "sleep")
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var startAll, stopAll, single time.Duration
			var rssPerAgent, goroutinesPerAgent float64
			ctx := context.Background()
			for b.Loop() {
				g, err := NewGroup(GroupOptions{})
				if err != nil {
					b.Fatal(err)
				}
				for i := range n {
					if _, err := g.Add(Spec{Name: fmt.Sprintf("a%d", i), Path: sleep, Args: []string{"1000"},
						StartSeconds: config.Duration(1), TailBytes: -1}); err != nil {
						b.Fatal(err)
					}
				}
				runtime.GC()
				rss0, gor0 := rssBytes(b), runtime.NumGoroutine()
				t0 := time.Now()
				if err := g.StartAll(ctx); err != nil {
					b.Fatal(err)
				}
				startAll += time.Since(t0)
				runtime.GC()
				rssPerAgent += float64(rssBytes(b)-rss0) / float64(n)
				goroutinesPerAgent += float64(runtime.NumGoroutine()-gor0) / float64(n)

				one, _ := g.Get("a0")
				t1 := time.Now()
				one.Stop(ctx)
				single += time.Since(t1)

				t2 := time.Now()
				if err := g.Close(ctx); err != nil {
					b.Fatal(err)
				}
				stopAll += time.Since(t2)
				for _, st := range g.List() {
					p, _ := g.Get(st.Name)
					p.Wait(ctx)
				}
			}
			runs := float64(b.N)
			b.ReportMetric(startAll.Seconds()*1e3/runs, "startall-ms")
			b.ReportMetric(stopAll.Seconds()*1e3/runs, "stopall-ms")
			b.ReportMetric(single.Seconds()*1e3/runs, "stop1-ms")
			b.ReportMetric(float64(stopAll)/float64(single), "stopall/stop1")
			b.ReportMetric(rssPerAgent/runs/1024, "KiB-rss/agent")
			b.ReportMetric(goroutinesPerAgent/runs, "goroutines/agent")
		})
	}
}

// BenchmarkGroupStopAllParallel stops 100 agents that each take 100ms to
// shut down after SIGTERM, beside one such agent's Stop in the same run:
// a parallel StopAll costs about one stop, not 100.
func BenchmarkGroupStopAllParallel(b *testing.B) {
	const n = 100
	ctx := context.Background()
	var stopAll, single time.Duration
	for b.Loop() {
		g, err := NewGroup(GroupOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			g.Add(Spec{Name: fmt.Sprintf("a%d", i), Path: agentPath, Args: []string{"-term-delay", "100ms"},
				StartSeconds: config.Duration(1), TailBytes: -1})
		}
		if err := g.StartAll(ctx); err != nil {
			b.Fatal(err)
		}
		one, _ := g.Get("a0")
		t0 := time.Now()
		one.Stop(ctx)
		single += time.Since(t0)
		t1 := time.Now()
		if err := g.Close(ctx); err != nil {
			b.Fatal(err)
		}
		stopAll += time.Since(t1)
	}
	b.ReportMetric(stopAll.Seconds()*1e3/float64(b.N), "stopall-ms")
	b.ReportMetric(single.Seconds()*1e3/float64(b.N), "stop1-ms")
	b.ReportMetric(float64(stopAll)/float64(single), "stopall/stop1")
}

// rssBytes reads this process's resident set size from /proc.
func rssBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

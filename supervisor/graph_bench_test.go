package supervisor

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// BenchmarkStartAllDependencyChain starts 1,000 idle agents (`sleep 1000`)
// twice per op: independent, then as 100 chains of depth 10 (each agent
// needs the one before it ready), and reports both StartAll times and
// their ratio, measured in the same run: the cost of ordering.
func BenchmarkStartAllDependencyChain(b *testing.B) {
	sleep := benchBinary(b, "sleep")
	const n, depth = 1000, 10
	var flat, chained time.Duration
	ctx := context.Background()
	startAll := func(chain bool) time.Duration {
		g, err := NewGroup(GroupOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			s := Spec{Name: fmt.Sprintf("a%04d", i), Path: sleep, Args: []string{"1000"}, StartSeconds: config.Duration(1), TailBytes: -1}
			if width := n / depth; chain && i >= width {
				s.DependsOn = map[string]Dependency{fmt.Sprintf("a%04d", i-width): {Condition: ConditionReady}}
			}
			if _, err := g.Add(s); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		if err := g.StartAll(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		if err := g.Close(ctx); err != nil {
			b.Fatal(err)
		}
		return took
	}
	for b.Loop() {
		flat += startAll(false)
		chained += startAll(true)
	}
	b.ReportMetric(float64(flat.Milliseconds())/float64(b.N), "independent-ms")
	b.ReportMetric(float64(chained.Milliseconds())/float64(b.N), "chain10-ms")
	b.ReportMetric(float64(chained)/float64(flat), "chain/independent")
}

// BenchmarkIdleScheduledTasks arms 1,000 scheduled tasks ("@hourly") and
// measures what they cost while idle: goroutines per task (the design
// says none) and the host's CPU time per second of idling.
func BenchmarkIdleScheduledTasks(b *testing.B) {
	truth := benchBinary(b, "true")
	const n = 1000
	for b.Loop() {
		procs := make([]*Process, n)
		for i := range procs {
			p, err := New(Spec{Name: fmt.Sprintf("t%04d", i), Path: truth, Task: &TaskSpec{Schedule: "@hourly", Jitter: config.Duration(time.Minute)}})
			if err != nil {
				b.Fatal(err)
			}
			procs[i] = p
		}
		runtime.GC()
		g0 := runtime.NumGoroutine()
		for _, p := range procs {
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		for _, p := range procs { // the owners retire once the schedule is armed
			p.Wait(context.Background()) //nolint:errcheck // no deadline
		}
		goroutines := runtime.NumGoroutine() - g0
		const idle = 2 * time.Second
		cpu0 := cpuTime(b)
		time.Sleep(idle)
		cpu := cpuTime(b) - cpu0
		b.ReportMetric(float64(goroutines)/n, "goroutines/task")
		b.ReportMetric(float64(cpu.Microseconds())/idle.Seconds(), "cpu-us/s")
		for _, p := range procs {
			p.Stop(context.Background()) //nolint:errcheck // nothing runs
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

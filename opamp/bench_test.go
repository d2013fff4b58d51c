package opamp_test

import (
	"flag"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/opamp"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"github.com/tend-dev/tend/supervisor"
)

// BenchmarkHealthLatency is the time from an agent's transition (its
// Event's time) to the server having it, for a stop and a start of one
// agent of a host of five, at the default Coalesce and at 10ms.
func BenchmarkHealthLatency(b *testing.B) {
	for _, coalesce := range []time.Duration{200 * time.Millisecond, 10 * time.Millisecond} {
		b.Run("coalesce-"+coalesce.String(), func(b *testing.B) {
			srv, addr := startServer(b, "127.0.0.1:0")
			var entries []string
			for i := range 5 {
				entries = append(entries, sleeper(fmt.Sprintf("agent-%d", i)))
			}
			h := newHost(b, agents(entries...), supervisor.Containment{Disabled: true})
			h.connect(b, addr, func(c *opamp.Config) { c.Coalesce, c.Logger = coalesce, logr.Discard() })
			if _, err := srv.Wait(ctxTimeout(b, 10*time.Second), "healthy", healthy(h, "agent-0")); err != nil {
				b.Fatal(err)
			}
			p, _ := h.g.Get("agent-0")
			at := make(chan time.Time, 16)
			defer p.Subscribe(func(e supervisor.Event) {
				if e.To == supervisor.Stopped || e.To == supervisor.Running {
					at <- e.Time
				}
			})()
			var total time.Duration
			for b.Loop() {
				for _, up := range []bool{false, true} {
					if up {
						p.Start(ctxTimeout(b, 10*time.Second))
					} else {
						p.Stop(ctxTimeout(b, 10*time.Second))
					}
					if _, err := srv.Wait(ctxTimeout(b, 10*time.Second), "the transition", func(all []fleet.Host) bool {
						return agentHealth(all, h, "agent-0").GetHealthy() == up
					}); err != nil {
						b.Fatal(err)
					}
					total += time.Since(<-at)
				}
			}
			b.ReportMetric(float64(total.Microseconds())/float64(2*b.N)/1000, "ms/transition")
		})
	}
}

var idleFor = flag.Duration("idle", time.Minute, "how long BenchmarkIdleHost watches")

// BenchmarkIdleHost is one host of 50 idle agents for -idle (a minute):
// the process's CPU time and heap with the bridge connected (heartbeat
// 30s) against the same Group unconnected, measured one after the other
// in the same run. go test -run '^$' -bench BenchmarkIdleHost -benchtime 1x
func BenchmarkIdleHost(b *testing.B) {
	var entries []string
	for i := range 50 {
		entries = append(entries, sleeper(fmt.Sprintf("agent-%d", i)))
	}
	h := newHost(b, agents(entries...), supervisor.Containment{Disabled: true})
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	watch := func() time.Duration {
		began := cpu()
		time.Sleep(*idleFor)
		return cpu() - began
	}
	for b.Loop() {
		heapBefore := heapInUse()
		alone := watch()
		srv, addr := startServer(b, "127.0.0.1:0")
		h.connect(b, addr, func(c *opamp.Config) { c.Logger = logr.Discard() })
		if _, err := srv.Wait(ctxTimeout(b, 10*time.Second), "healthy", healthy(h, "agent-49")); err != nil {
			b.Fatal(err)
		}
		heapWith := heapInUse()
		messages := srv.Messages()
		bridged := watch()
		b.ReportMetric(float64(alone.Microseconds())/1000, "cpu-ms-unconnected")
		b.ReportMetric(float64(bridged.Microseconds())/1000, "cpu-ms-connected")
		b.ReportMetric(float64(int64(heapWith)-int64(heapBefore))/1024, "heap-KiB-bridge+server")
		b.ReportMetric(float64(srv.Messages()-messages), "idle-messages")
	}
}

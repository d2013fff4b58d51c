package health

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// BenchmarkResourceSweep100 samples the CPU and RSS of 100 live processes
// (one Resources probe each, samplers reused between sweeps): ms per
// sweep and allocations per PID.
func BenchmarkResourceSweep100(b *testing.B) {
	probes := make([]*Resources, 100)
	for i := range probes {
		cmd := exec.Command("/bin/sleep", "1000")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		probes[i] = NewResources(func() int { return cmd.Process.Pid }, Limits{CPUPercent: 50})
	}
	ctx := context.Background()
	for _, p := range probes {
		p.Sample(ctx) // create the samplers
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for _, p := range probes {
			if _, err := p.Sample(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/sweep")
}

// BenchmarkHeartbeatServer measures valid heartbeat lines per second over
// one connection and over 100 concurrent ones.
func BenchmarkHeartbeatServer(b *testing.B) {
	for _, conns := range []int{1, 100} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			path := socketPathB(b)
			s, err := NewHeartbeatServer(ServerOptions{Path: path, AgentID: "a", Heartbeat: NewHeartbeat(time.Hour), MaxConns: 200})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Serve(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			line := []byte(`{"agent_id":"a","pid":42,"status":"running","cpu":1.5,"memory":1048576,"timestamp":"2026-11-29T05:00:00Z"}` + "\n")
			perConn := b.N/conns + 1
			start := time.Now()
			var wg sync.WaitGroup
			for range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := net.Dial("unix", path)
					if err != nil {
						b.Error(err)
						return
					}
					defer c.Close()
					for range perConn {
						c.Write(line)
					}
				}()
			}
			wg.Wait()
			total := int64(perConn * conns)
			for s.Stats().Lines < total {
				time.Sleep(time.Millisecond)
			}
			b.ReportMetric(float64(total)/time.Since(start).Seconds(), "lines/s")
		})
	}
}

func socketPathB(b *testing.B) string { return b.TempDir() + "/a.sock" }

package supervisor

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// benchBinary returns a small C program for the benchmarks, so the figures
// show tend's cost rather than a Go runtime's start-up.
func benchBinary(b *testing.B, name string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		b.Skipf("%s not installed", name)
	}
	return path
}

// boundaries are the two ways a benchmark's agent is held: in a process
// group (a Process made by New) and in a cgroup (a Group's member).
var boundaries = []struct {
	name    string
	process func(b *testing.B, spec Spec) *Process
}{
	{"process-group", func(b *testing.B, spec Spec) *Process {
		p, err := New(spec)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}},
	{"cgroup", func(b *testing.B, spec Spec) *Process {
		p, err := containedGroup(b).Add(spec)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}},
}

// containedGroup is a Group whose members get cgroups, closed at the
// benchmark's end; it skips where the host cannot create them.
func containedGroup(b *testing.B) *Group {
	g, err := NewGroup(GroupOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close(context.Background()) }) //nolint:errcheck // the benchmark's own
	if _, err := g.CgroupParent(); err != nil {
		b.Skipf("no cgroups: %v", err)
	}
	return g
}

// BenchmarkStartStop measures one Start (spawned, StartSeconds of 1ns) and
// one Stop (SIGTERM to the group, reaped, group or cgroup empty) of
// `sleep`, in a process group and in a cgroup, each beside the bare
// os/exec equivalent (Start, Signal, Wait) in the same run, and reports
// the ratio.
func BenchmarkStartStop(b *testing.B) {
	for _, bd := range boundaries {
		b.Run(bd.name, func(b *testing.B) { benchStartStop(b, bd.process) })
	}
}

func benchStartStop(b *testing.B, process func(*testing.B, Spec) *Process) {
	sleep := benchBinary(b, "sleep")
	p := process(b, Spec{Name: "bench", Path: sleep, Args: []string{"1000"},
		StartSeconds: config.Duration(1), TailBytes: -1})
	ctx := context.Background()
	var tendTime, bareTime time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := p.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		cmd := exec.Command(sleep, "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		t2 := time.Now()
		tendTime += t1.Sub(t0)
		bareTime += t2.Sub(t1)
	}
	reportRatio(b, tendTime, bareTime)
}

// BenchmarkRestartLatency measures a crash-restart cycle: the child (`true`)
// exits at once and tend restarts it with backoff.None, b.N times, in a
// process group and in a cgroup (its leaf reused, as nothing is killed);
// then a bare exec.Command(...).Run() loop does b.N cycles in the same
// run. Both figures and their ratio are reported.
func BenchmarkRestartLatency(b *testing.B) {
	for _, bd := range boundaries {
		b.Run(bd.name, func(b *testing.B) { benchRestartLatency(b, bd.process) })
	}
}

func benchRestartLatency(b *testing.B, process func(*testing.B, Spec) *Process) {
	bin := benchBinary(b, "true")
	p := process(b, Spec{Name: "bench", Path: bin, TailBytes: -1,
		StartSeconds: config.Duration(time.Hour),
		Restart:      RestartSpec{MaxRestarts: -1, Backoff: backoff.None()}})
	ctx := context.Background()
	b.ResetTimer()
	target := b.N
	reached := make(chan struct{})
	starts := 0
	cancel := p.Subscribe(func(e Event) {
		if e.To == Starting {
			starts++
			if starts == target+1 {
				close(reached)
			}
		}
	})
	t0 := time.Now()
	go p.Start(ctx)
	<-reached
	tendTime := time.Since(t0)
	cancel()
	if err := p.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	p.Wait(ctx)

	t1 := time.Now()
	for range target {
		exec.Command(bin).Run()
	}
	bareTime := time.Since(t1)
	reportRatio(b, tendTime, bareTime)
}

func reportRatio(b *testing.B, tend, bare time.Duration) {
	b.ReportMetric(float64(tend.Nanoseconds())/float64(b.N), "tend-ns/op")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/op")
	b.ReportMetric(float64(tend)/float64(bare), "tend/bare")
}

// BenchmarkNotifyReadyLatency measures how long after the child sends
// READY=1 its Start returns: the notify socket's reader, the owner's
// transition to Running and the answer to the caller.
func BenchmarkNotifyReadyLatency(b *testing.B) {
	var out lockedWriter
	p, err := New(Spec{Name: "bench", Path: agentPath, Args: []string{"-notify-ready-after", "0s", "-print-ready-time"},
		NotifyReady: true, Stdout: &out, TailBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(func() { p.Stop(ctx) }) //nolint:errcheck // leaves no agent behind when an iteration fails
	var total time.Duration
	for b.Loop() {
		out.Reset()
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		running := time.Now()
		var sent int64
		for deadline := running.Add(time.Second); ; time.Sleep(time.Millisecond) { // the line comes through a pipe
			if _, err := fmt.Sscanf(out.String(), "ready-sent %d", &sent); err == nil {
				break
			} else if time.Now().After(deadline) {
				b.Fatalf("agent output %q: %v", out.String(), err)
			}
		}
		total += running.Sub(time.Unix(0, sent))
		if err := p.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ready-to-start-return-ns")
}

//go:build linux

package supervisor

import (
	"context"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// BenchmarkRestartUnderLoad restarts an HTTP agent while four clients
// fetch from it without pause, the agent on a socket tend activated and
// the same agent binding its own port, and reports per restart the
// connections refused, those the dying child dropped after accepting
// them, and those answered.
func BenchmarkRestartUnderLoad(b *testing.B) {
	for _, activated := range []bool{true, false} {
		name := map[bool]string{true: "activated", false: "own-port"}[activated]
		b.Run(name, func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			spec := Spec{Name: "bench-" + name, Path: agentPath, Args: []string{"-sd-serve", "-sd-own-port", addr},
				NotifyReady: true, TailBytes: -1}
			if activated {
				spec.Listen = []string{"tcp://" + addr}
			}
			p, err := New(spec)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.Cleanup(func() { p.Close(ctx) }) //nolint:errcheck // leaves no agent behind when an iteration fails
			if err := p.Start(ctx); err != nil {
				b.Fatal(err)
			}
			var c scrapeCounts
			b.ResetTimer()
			c = scrapeDuring("http://"+addr+"/", func() {
				for b.Loop() {
					if err := p.Restart(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(c.refused)/float64(b.N), "refused/restart")
			b.ReportMetric(float64(c.dropped)/float64(b.N), "dropped/restart")
			b.ReportMetric(float64(c.ok)/float64(b.N), "answered/restart")
			b.ReportMetric(float64(c.other)/float64(b.N), "other-errors/restart")
		})
	}
}

// BenchmarkActivatedStartStop measures what the LISTEN_PID trampoline
// costs: a Start and Stop of `sleep` handed a Listen socket (started
// through the host binary) against the same without one, interleaved in
// one run, and a bare exec.Cmd loop handing the socket in ExtraFiles.
func BenchmarkActivatedStartStop(b *testing.B) {
	sleep := benchBinary(b, "sleep")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	spec := Spec{Name: "bench-plain", Path: sleep, Args: []string{"1000"}, StartSeconds: config.Duration(1), TailBytes: -1}
	plain, err := New(spec)
	if err != nil {
		b.Fatal(err)
	}
	spec.Name, spec.Listen = "bench-activated", []string{"tcp://" + addr}
	activated, err := New(spec)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Cleanup(func() { activated.Close(ctx); plain.Close(ctx) }) //nolint:errcheck // leaves nothing behind when an iteration fails
	cycle := func(p *Process) time.Duration {
		t0 := time.Now()
		if err := p.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := p.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	cycle(activated) // binds the socket
	sock := activated.files.listeners["tcp://"+addr]
	var withListen, without, bare time.Duration
	for b.Loop() {
		withListen += cycle(activated)
		without += cycle(plain)
		t0 := time.Now()
		cmd := exec.Command(sleep, "1000")
		cmd.ExtraFiles = []*os.File{sock}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		bare += time.Since(t0)
	}
	n := float64(b.N)
	b.ReportMetric(float64(withListen.Nanoseconds())/n, "activated-ns/op")
	b.ReportMetric(float64(without.Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(float64(bare.Nanoseconds())/n, "bare-ns/op")
	b.ReportMetric(float64(withListen)/float64(without), "activated/plain")
	b.ReportMetric(float64(withListen)/float64(bare), "activated/bare")
}

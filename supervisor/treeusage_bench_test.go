package supervisor

import (
	"context"
	"fmt"
	"testing"

	"github.com/tend-dev/tend/health"
)

// BenchmarkTreeSample samples the whole tree of each of 100 running
// agents once per op: from each agent's cgroup (Process.TreeUsage) and
// by walking /proc (health.NewResources with Tree), in the same run.
func BenchmarkTreeSample(b *testing.B) {
	g := containedGroup(b)
	sleep := benchBinary(b, "sleep")
	var agents []*Process
	for i := range 100 {
		p, err := g.Add(Spec{Name: fmt.Sprintf("a%d", i), Path: sleep, Args: []string{"1000"}, StartSeconds: 1, TailBytes: -1})
		if err != nil {
			b.Fatal(err)
		}
		agents = append(agents, p)
	}
	if err := g.StartAll(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Run("cgroup", func(b *testing.B) {
		for b.Loop() {
			for _, p := range agents {
				if _, err := p.TreeUsage(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("proc-walk", func(b *testing.B) {
		probes := make([]*health.Resources, len(agents))
		for i, p := range agents {
			probes[i] = health.NewResources(func() int { return p.Status().PID }, health.Limits{Tree: true})
		}
		for b.Loop() {
			for _, r := range probes {
				if _, err := r.Sample(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

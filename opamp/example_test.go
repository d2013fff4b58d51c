package opamp_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/tend-dev/tend/opamp"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"github.com/tend-dev/tend/supervisor"
)

// A host connects its Group to an OpAMP server; the server sees each
// agent's health.
func ExampleNew() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	server := &fleet.Server{}
	server.Start(ln)
	defer server.Stop(context.Background())

	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Disabled: true}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer g.Close(ctx)
	g.Apply(ctx, []supervisor.Spec{{Name: "collector", Path: "/bin/sleep", Args: []string{"60"}}})

	bridge, err := opamp.New(g, opamp.Config{ServerURL: "ws://" + ln.Addr().String() + "/v1/opamp"})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { bridge.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	hosts, err := server.Wait(ctx, "the collector's health", func(hosts []fleet.Host) bool {
		return len(hosts) == 1 && hosts[0].Health.GetComponentHealthMap()["collector"] != nil
	})
	if err != nil {
		panic(err)
	}
	c := hosts[0].Health.GetComponentHealthMap()["collector"]
	fmt.Println("collector:", c.Status, "healthy:", c.Healthy)
	// Output: collector: running healthy: true
}

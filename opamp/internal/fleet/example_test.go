package fleet_test

import (
	"context"
	"fmt"
	"net"

	"github.com/tend-dev/tend/opamp/internal/fleet"
)

// A Server on a loopback port; hosts connect to ws://ADDR/v1/opamp.
func ExampleServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s := &fleet.Server{Token: "secret"} // hosts must send Authorization: Bearer secret
	if err := s.Start(ln); err != nil {
		panic(err)
	}
	defer s.Stop(context.Background())
	fmt.Println(len(s.Hosts()), "hosts,", s.Messages(), "messages")
	// Output: 0 hosts, 0 messages
}

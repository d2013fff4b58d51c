// Command edge-daemon is a small but real host daemon assembled from tend
// (see package edgedaemon): it supervises the agents its config file
// lists, in the daemon config format (agents, agent_defaults,
// binary_path ...), with rotated logs, health checks, hot reload, a
// status page, Prometheus metrics, a JSON API behind a token or a
// peer-checked Unix socket, and in-place upgrades.
//
//	go run ./examples/edge-daemon                          # the built-in demo
//	go run ./examples/edge-daemon -config configs/exporters.yaml
package main

import (
	"os"

	"github.com/tend-dev/tend/examples/edge-daemon/edgedaemon"
)

func main() { os.Exit(edgedaemon.Main()) }

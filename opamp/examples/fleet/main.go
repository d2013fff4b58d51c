// Command fleet shows a fleet of tend hosts on an OpAMP control plane,
// in one process: a small OpAMP server (on opamp-go's server package)
// and a host (a supervisor.Group of three agents connected by the
// bridge). It lists what the server sees, pushes a configuration that
// adds an agent (applied), then one whose new agent crash-loops (rolled
// back, reported FAILED with the reason, the running agents untouched),
// within a minute.
//
//	cd opamp && go run ./examples/fleet
//	cd opamp && go run ./examples/fleet -serve   # then keep serving: GET /hosts, POST /hosts/{uid}/config
//	cd opamp && go run ./examples/edge-daemon -opamp ws://127.0.0.1:4320/v1/opamp   # an edge-daemon joins it
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/tend-dev/tend/opamp"
	"github.com/tend-dev/tend/opamp/internal/fleet"
	"github.com/tend-dev/tend/supervisor"
)

func main() {
	serve := flag.Bool("serve", false, "after the demo, keep serving: GET /hosts lists them, POST /hosts/{uid}/config pushes a body")
	listen := flag.String("listen", "127.0.0.1:4320", "the OpAMP server's address (an edge-daemon with -opamp ws://ADDR/v1/opamp joins)")
	flag.Parse()
	if err := run(*listen, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func agent(name, script string) string {
	return fmt.Sprintf(`{"name": %q, "binary_path": "/bin/sh", "args": ["-c", %q], "start_seconds": "500ms"}`, name, script)
}

func list(agents ...string) []byte { return []byte("[\n  " + strings.Join(agents, ",\n  ") + "\n]\n") }

func run(listen string, serve bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The server.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &fleet.Server{Heartbeat: 10 * time.Second}
	if err := srv.Start(ln); err != nil {
		return err
	}
	defer srv.Stop(context.Background())
	url := "ws://" + ln.Addr().String() + "/v1/opamp"
	fmt.Println("OpAMP server on", url)

	// The host: its agents from a config file, which the bridge also
	// writes a remote configuration to.
	dir, err := os.MkdirTemp("", "tend-fleet")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Name: "fleet-example"}})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		g.Close(sctx)
	}()
	apply := func(ctx context.Context, data []byte) (supervisor.ApplyResult, error) {
		specs, err := fleet.DecodeAgents(data)
		if err != nil {
			return supervisor.ApplyResult{}, err
		}
		return g.Apply(ctx, specs)
	}
	path := filepath.Join(dir, "agents.json")
	collector, shipper := agent("collector", "while :; do sleep 1; done"), agent("shipper", "while :; do sleep 1; done")
	first := list(collector, shipper)
	if err := os.WriteFile(path, first, 0o640); err != nil {
		return err
	}
	if _, err := apply(ctx, first); err != nil {
		return err
	}
	bridge, err := opamp.New(g, opamp.Config{ServerURL: url, ConfigPath: path, Apply: apply,
		Validate:     func(data []byte) error { _, err := fleet.DecodeAgents(data); return err },
		VerifyWindow: 10 * time.Second, Settle: 3 * time.Second, ServiceName: "fleet-example-host"})
	if err != nil {
		return err
	}
	bctx, stopBridge := context.WithCancel(ctx)
	bridged := make(chan struct{})
	go func() { bridge.Run(bctx); close(bridged) }()
	defer func() { stopBridge(); <-bridged }()
	uid := bridge.InstanceUID()

	step := func(what string, ok func(fleet.Host) bool) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		hosts, err := srv.Wait(wctx, what, func(hosts []fleet.Host) bool {
			for _, h := range hosts {
				if h.UID == uid && ok(h) {
					return true
				}
			}
			return false
		})
		if err == nil {
			fmt.Printf("\n== %s\n", what)
			show(hosts)
		}
		return err
	}
	if err := step("the host connected, its agents healthy", func(h fleet.Host) bool { return h.Health.GetHealthy() && len(h.Health.GetComponentHealthMap()) == 2 }); err != nil {
		return err
	}
	pids := func() string {
		var out []string
		for _, st := range g.List() {
			out = append(out, fmt.Sprintf("%s=%d", st.Name, st.PID))
		}
		return strings.Join(out, " ")
	}
	fmt.Println("host PIDs:", pids())

	good := list(collector, shipper, agent("exporter", "while :; do sleep 1; done"))
	fmt.Println("\n-> pushing a config that adds the exporter")
	hash, err := srv.Push(ctx, uid, good)
	if err != nil {
		return err
	}
	if err := step("the config applied", func(h fleet.Host) bool { return h.Settled(hash) }); err != nil {
		return err
	}
	fmt.Println("host PIDs:", pids())

	bad := list(collector, shipper, agent("exporter", "while :; do sleep 1; done"),
		agent("broken", "sleep 1; echo 'listen tcp :9100: bind: address already in use' >&2; exit 1"))
	fmt.Println("\n-> pushing a config whose new agent crash-loops")
	if hash, err = srv.Push(ctx, uid, bad); err != nil {
		return err
	}
	if err := step("the bad config rolled back", func(h fleet.Host) bool { return h.Settled(hash) }); err != nil {
		return err
	}
	fmt.Println("host PIDs:", pids(), "(the same: nothing it did not change was touched)")

	if !serve {
		return nil
	}
	return serveAPI(ctx, srv)
}

// show prints each host and its agents as the server has them.
func show(hosts []fleet.Host) {
	for _, h := range hosts {
		fmt.Printf("host %s  %s  remote config: %s %s\n", h.UID, h.Health.GetStatus(),
			strings.TrimPrefix(h.Remote.GetStatus().String(), "RemoteConfigStatuses_"), h.Remote.GetErrorMessage())
		names := make([]string, 0, len(h.Health.GetComponentHealthMap()))
		for name := range h.Health.GetComponentHealthMap() {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c := h.Health.GetComponentHealthMap()[name]
			fmt.Printf("  %-10s healthy=%-5v %s\n", name, c.Healthy, c.Status)
		}
	}
}

// serveAPI serves the server's view for a person to play with: GET
// /hosts, and POST /hosts/{uid}/config with the new config as the body.
func serveAPI(ctx context.Context, srv *fleet.Server) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hosts", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(srv.Hosts())
	})
	mux.HandleFunc("POST /hosts/{uid}/config", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err == nil {
			_, err = srv.Push(r.Context(), r.PathValue("uid"), body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	api := &http.Server{Addr: "127.0.0.1:4321", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); api.Close() }()
	fmt.Println("\nserving the fleet API on http://127.0.0.1:4321/hosts (POST /hosts/{uid}/config pushes a body); Ctrl-C ends")
	if err := api.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

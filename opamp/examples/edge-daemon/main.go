// Command edge-daemon is the edge-daemon (examples/edge-daemon of tend)
// built with the OpAMP bridge: with -opamp URL it reports its agents to
// that server and takes its configuration from it, applied as a
// transaction that rolls back (see package opamp). It lives in the
// bridge's module so that tend's own does not link opamp-go.
//
//	cd opamp && go run ./examples/fleet -serve &       # a server on 127.0.0.1:4320
//	cd opamp && go run ./examples/edge-daemon -opamp ws://127.0.0.1:4320/v1/opamp -config ../examples/edge-daemon/configs/exporters.yaml
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/tend-dev/tend/examples/edge-daemon/edgedaemon"
	"github.com/tend-dev/tend/opamp"
)

func main() { os.Exit(edgedaemon.Main(bridge())) }

// bridge is the Extension: its flags, and a Bridge run beside the daemon
// while -opamp names a server.
func bridge() edgedaemon.Extension {
	var server, tokenFile, caFile string
	return edgedaemon.Extension{
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&server, "opamp", "", "OpAMP server to report to and take configuration from (ws://, wss://, http://, https://); empty: none")
			fs.StringVar(&tokenFile, "opamp-token-file", "", "file holding the bearer token the OpAMP server wants")
			fs.StringVar(&caFile, "opamp-ca", "", "PEM file of the CA that signed the OpAMP server's certificate (default: the system's)")
		},
		Run: func(ctx context.Context, h edgedaemon.Host) error {
			if server == "" {
				return nil
			}
			cfg, err := config(server, tokenFile, caFile, h)
			if err != nil {
				return err
			}
			b, err := opamp.New(h.Group, cfg)
			if err != nil {
				return err
			}
			return b.Run(ctx)
		},
	}
}

func config(server, tokenFile, caFile string, h edgedaemon.Host) (opamp.Config, error) {
	uid, err := opamp.InstanceUIDFile(filepath.Join(h.DataDir, "opamp-instance-uid"))
	if err != nil {
		return opamp.Config{}, err
	}
	cfg := opamp.Config{ServerURL: server, InstanceUID: uid, ServiceName: "edge-daemon", Logger: h.Logger}
	if h.ConfigPath != "" { // the demo has no file to take a configuration into
		cfg.ConfigPath, cfg.Validate, cfg.Apply = h.ConfigPath, h.Validate, h.Apply
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return cfg, fmt.Errorf("-opamp-token-file: %w", err)
		}
		cfg.Header = http.Header{"Authorization": {"Bearer " + strings.TrimSpace(string(b))}}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return cfg, fmt.Errorf("-opamp-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("-opamp-ca %s: no PEM certificate in it", caFile)
		}
		cfg.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return cfg, nil
}

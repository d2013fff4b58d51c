package edgedaemon

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

//go:embed demo.yaml
var demoConfig string

// demoEnv selects a demo agent mode when the daemon's binary is run as one.
const demoEnv = "TEND_EDGE_DEMO"

// prepareDemo writes what the demo agents expect and returns the demo
// config with the daemon's binary and data directory filled in.
func prepareDemo(dataDir string) (daemonConfig, error) {
	self, err := os.Executable()
	if err != nil {
		return daemonConfig{}, err
	}
	healthyConfig := filepath.Join(dataDir, "agents", "healthy", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(healthyConfig), 0o750); err != nil {
		return daemonConfig{}, err
	}
	if err := os.WriteFile(healthyConfig, []byte("greeting: hello\n"), 0o640); err != nil {
		return daemonConfig{}, err
	}
	doc := strings.NewReplacer("@self@", self, "@data@", dataDir).Replace(demoConfig)
	return parseConfig([]byte(doc))
}

// runDemoAgent is the daemon's binary acting as one of the demo agents.
func runDemoAgent(mode string) int {
	switch mode { // the tasks: they do their job and exit
	case "setup":
		if err := os.MkdirAll(os.Getenv("DEMO_SPOOL"), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "setup:", err)
			return 1
		}
		fmt.Println("setup: spool directory ready")
		return 0
	case "inventory":
		host, _ := os.Hostname()
		fmt.Printf("inventory: host %s, %d CPUs, scanned at %s\n", host, runtime.NumCPU(), time.Now().Format(time.RFC3339))
		return 0
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	beats := startBeating(os.Getenv("DEMO_SOCKET"))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var leak [][]byte
	crashAt := 5 + rand.IntN(5)
	for i := 1; ; i++ {
		select {
		case <-hup:
			b, _ := os.ReadFile(os.Getenv("DEMO_CONFIG"))
			fmt.Printf("reloaded config: %s\n", strings.TrimSpace(string(b)))
			continue
		case <-tick.C:
		}
		switch mode {
		case "healthy":
			fmt.Printf("working: batch %d shipped\n", i)
			beats <- true
		case "collector":
			fmt.Printf("collecting: %d samples buffered\n", i*100)
		case "shipper":
			fmt.Printf("shipping: batch %d sent to the collector\n", i)
		case "crasher":
			fmt.Printf("working: step %d of %d\n", i, crashAt)
			if i == crashAt {
				fmt.Fprintln(os.Stderr, "fatal: simulated crash: connection to backend lost")
				return 2
			}
		case "silent":
			beats <- i <= 6
			if i > 6 {
				fmt.Println("stuck: waiting on a lock that never frees")
			} else {
				fmt.Printf("working: item %d\n", i)
			}
		case "leaker":
			chunk := make([]byte, 20<<20)
			for j := range chunk {
				chunk[j] = byte(j)
			}
			leak = append(leak, chunk)
			fmt.Printf("cached %d MiB and never freed it\n", 20*len(leak))
		default:
			fmt.Fprintln(os.Stderr, "unknown demo mode", mode)
			return 1
		}
	}
}

// startBeating sends a heartbeat to socket whenever true arrives on the
// returned channel (a no-op without a socket).
func startBeating(socket string) chan<- bool {
	beats := make(chan bool, 1)
	go func() {
		var conn net.Conn
		for beat := range beats {
			if !beat || socket == "" {
				continue
			}
			if conn == nil {
				c, err := net.Dial("unix", socket)
				if err != nil {
					continue
				}
				conn = c
			}
			line, _ := json.Marshal(map[string]any{"agent_id": agentIDFromSocket(socket), "pid": os.Getpid(),
				"status": "running", "timestamp": time.Now().UTC().Format(time.RFC3339)})
			if _, err := conn.Write(append(line, '\n')); err != nil {
				conn.Close()
				conn = nil
			}
		}
	}()
	return beats
}

// agentIDFromSocket: the demo names each socket after its agent.
func agentIDFromSocket(socket string) string {
	return strings.TrimSuffix(filepath.Base(socket), ".sock")
}

//go:build linux

package health

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/internal/fdexhaust"
)

const exhaustedServerEnv = "TEND_TEST_EXHAUSTED_HEARTBEAT_SERVER"

// The test binary re-executed with exhaustedServerEnv set is the helper.
func init() {
	if path := os.Getenv(exhaustedServerEnv); path != "" {
		os.Exit(runExhaustedServer(path))
	}
}

// The heartbeat server outlives a spell without file descriptors: the
// beat a client sent meanwhile is served once descriptors are free, Serve
// keeps going until its context ends, and then it removes the socket. The
// server runs in a helper process whose open-files limit is used up.
func TestHeartbeatServerSurvivesFDExhaustion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb.sock")
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), exhaustedServerEnv+"="+path)
	stdin, _ := helper.StdinPipe()
	stdout, _ := helper.StdoutPipe()
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "exhausted" {
		t.Fatalf("helper: %q", out.Text())
	}
	c, err := net.Dial("unix", path) // queued in the backlog; the server cannot accept it yet
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, `{"agent_id":"a","status":"running"}`+"\n")
	fmt.Fprintln(stdin, "connected")
	var report []string
	for out.Scan() {
		report = append(report, out.Text())
	}
	if err := helper.Wait(); err != nil {
		t.Fatalf("helper: %v; it said:\n%s", err, strings.Join(report, "\n"))
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Serve returned (%v)", err)
	}
	t.Log(strings.Join(report, "\n"))
}

// runExhaustedServer is the helper: it serves, uses up its descriptors,
// waits for the test's client, frees them and checks the beat arrives.
func runExhaustedServer(path string) int {
	s, err := NewHeartbeatServer(ServerOptions{Path: path, Heartbeat: NewHeartbeat(time.Hour)})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	release, err := fdexhaust.Exhaust()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("exhausted")
	bufio.NewReader(os.Stdin).ReadString('\n') //nolint:errcheck // any answer will do
	if !waitUntil(func() bool { return s.Stats().AcceptErrors > 0 }, served) {
		fmt.Println("no accept failed while descriptors were used up, or Serve ended")
		return 1
	}
	release()
	if !waitUntil(func() bool { return s.Stats().Lines > 0 }, served) {
		fmt.Printf("the queued beat was not served once descriptors were free: %+v\n", s.Stats())
		return 1
	}
	fmt.Printf("stats %+v\n", s.Stats())
	cancel()
	if err := <-served; err != nil {
		fmt.Println("Serve:", err)
		return 1
	}
	return 0
}

// waitUntil polls cond for up to 10 s; false if it never held or Serve
// returned first.
func waitUntil(cond func() bool, served chan error) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-served:
			fmt.Println("Serve returned early:", err)
			return false
		default:
		}
		if cond() {
			return true
		}
	}
	return false
}

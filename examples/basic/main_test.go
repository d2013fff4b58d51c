package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Runs the example as a newcomer would, with no arguments, long enough to
// see the demo agent crash and come back, then interrupts it like Ctrl-C.
func TestBasicRestartsTheDemoAgentAndStopsOnInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the example for several seconds")
	}
	bin := filepath.Join(t.TempDir(), "basic")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	got := out.String()
	if err != nil {
		t.Fatalf("basic exited with %v\n%s", err, got)
	}
	for _, want := range []string{"stopped -> starting", "running -> backoff (exited: exit code 2)", "backoff -> starting", "running -> stopping", "demo is stopped after 1 restarts; last exit: killed by SIGTERM"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

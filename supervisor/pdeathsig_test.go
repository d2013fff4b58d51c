package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// helperEnv makes the test binary act as a host process that supervises the
// test agent with a parent-death signal and never returns.
const helperEnv = "TEND_TEST_PDEATHSIG_HOST"

func runHelper() {
	var spec Spec
	spec.Name = "orphan-guard"
	spec.Path = os.Getenv("TEND_TEST_AGENT")
	spec.Args = []string{"-pidfile", os.Getenv(helperEnv)}
	spec.StartSeconds = config.Duration(10 * time.Millisecond)
	spec.ParentDeathSignal = Signal(syscall.SIGKILL)
	p, err := New(spec)
	if err == nil {
		err = p.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	select {} // until the test kills this process
}

// The kernel sends the parent-death signal when the thread that forked the
// child ends, and Go ends a thread when a goroutine locked to it returns.
// Starting from such a goroutine must not kill the child.
func TestParentDeathSignalSurvivesLockedCallerGoroutine(t *testing.T) {
	spec := agentSpec(t)
	spec.ParentDeathSignal = Signal(syscall.SIGKILL)
	p := newProcess(t, spec)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		errc <- p.Start(ctxTimeout(t, 5*time.Second))
	}()
	if err := <-errc; err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := p.Status().PID
	time.Sleep(300 * time.Millisecond) // time for a wrongly aimed signal to land
	if !alive(pid) {
		t.Fatalf("child %d died when the goroutine that called Start ended", pid)
	}
	if st := p.Status(); st.State != Running || st.PID != pid {
		t.Fatalf("status %+v, want the same child Running", st)
	}
}

func TestParentDeathSignalKillsChildWhenHostDies(t *testing.T) {
	pidFile := tempFile(t, "agent.pid")
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), helperEnv+"="+pidFile, "TEND_TEST_AGENT="+agentPath)
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	pid := readPIDs(t, pidFile, 1)[0]
	if !alive(pid) {
		t.Fatalf("agent %d not running under the helper host", pid)
	}
	host.Process.Kill()
	host.Wait()
	waitGone(t, pid, 5*time.Second)
	t.Logf("agent %d died with its host", pid)
}

package testagent

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Main is a test package's TestMain body for tests that run the agent: it
// builds the agent, stores its path in *path, runs the tests, removes the
// build and fails the run if goroutines leaked. It returns the exit code.
func Main(m *testing.M, path *string) int {
	dir, err := os.MkdirTemp("", "tend-testagent")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *path, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// KillMidWrite starts the test binary again as a writer process (with
// env=target in its environment, for its TestMain to recognise) rounds
// times, SIGKILLs it after a growing delay, and calls check after each
// kill: the crash-safety test of a file writer.
func KillMidWrite(t testing.TB, env, target string, rounds int, check func(round int)) {
	t.Helper()
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), env+"="+target)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(10+round*5) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		check(round)
	}
}

package listenexec

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// The trampoline execs the target in the same process, with LISTEN_PID
// its own PID, an inherited LISTEN_PID replaced, the marker gone, and the
// rest of the environment and the arguments as given.
func TestTrampolineSetsListenPID(t *testing.T) {
	script := `echo "pid=$$ listen=$LISTEN_PID keep=$KEEP marker=${TEND_LISTEN_EXEC:-none} args=$0,$1"`
	argv, env := Command("/bin/sh", []string{"sh", "-c", script, "zero", "one"}, []string{"KEEP=yes", "LISTEN_PID=1", "PATH=/usr/bin:/bin"})
	cmd := exec.Command(Self)
	cmd.Path, cmd.Args, cmd.Env = Self, argv, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := fmt.Sprintf("pid=%d listen=%d keep=yes marker=none args=zero,one", cmd.Process.Pid, cmd.Process.Pid)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A target that cannot be executed ends the trampoline with 127 and the
// reason on stderr.
func TestTrampolineExecFailure(t *testing.T) {
	argv, env := Command("/nonexistent/agent", []string{"agent"}, nil)
	cmd := exec.Command(Self)
	cmd.Path, cmd.Args, cmd.Env = Self, argv, env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 || !strings.Contains(string(out), "exec /nonexistent/agent: no such file or directory") {
		t.Fatalf("exit %v, output %q; want 127 naming the target", err, out)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

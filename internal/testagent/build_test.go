package testagent

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAgentFlags(t *testing.T) {
	bin, err := Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-lines", "2", "-stderr-lines", "1", "-text", "hi", "-after", "1ms", "-exit", "3").CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Fatalf("exit: %v, want code 3", err)
	}
	for _, want := range []string{"hi 1\n", "hi 2\n", "hi err 1\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	out, err = exec.Command(bin, "-config", "/nonexistent").CombinedOutput()
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 || !strings.Contains(string(out), "bad config") {
		t.Fatalf("missing config: %v %q, want exit 3", err, out)
	}
}

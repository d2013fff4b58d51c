package tend_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A host that does not import the metrics package does not link
// client_golang: no core package depends on it.
func TestCorePackagesDoNotLinkPrometheus(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	core := []string{"./supervisor", "./health", "./logs", "./reload", "./backoff", "./config"}
	out, err := exec.Command(gotool, append([]string{"list", "-deps"}, core...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	if !strings.Contains(string(out), "github.com/tend-dev/tend/supervisor") {
		t.Fatalf("go list -deps lists no supervisor:\n%s", out)
	}
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "github.com/prometheus/") {
			t.Errorf("a core package depends on %s", strings.TrimSpace(line))
		}
	}
}

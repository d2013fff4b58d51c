// Package testagent builds the repository's scriptable test agent
// (cmd/testagent) for tests and examples that need a real child process.
package testagent

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Build compiles the test agent into dir and returns the binary's absolute
// path. It needs the go command, which every test run has.
func Build(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testagent: cannot locate the package source")
	}
	out := filepath.Join(dir, "testagent")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/testagent")
	cmd.Dir = filepath.Dir(self)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testagent: go build: %w\n%s", err, b)
	}
	return out, nil
}

package supervisor

import (
	"fmt"
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
	"go.uber.org/goleak"
)

// agentPath is the test agent binary, built once for the package.
var agentPath string

func TestMain(m *testing.M) {
	// Re-executed test binaries acting as helper processes.
	if os.Getenv(helperEnv) != "" {
		runHelper()
		return
	}
	if path := os.Getenv(storeWriterEnv); path != "" {
		runStoreWriter(path)
		return
	}
	dir, err := os.MkdirTemp("", "tend-supervisor-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentPath, err = testagent.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

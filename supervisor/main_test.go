package supervisor

import (
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
)

// agentPath is the test agent binary, built once for the package.
var agentPath string

func TestMain(m *testing.M) {
	// Re-executed test binaries acting as helper processes.
	if os.Getenv(helperEnv) != "" {
		runHelper()
		return
	}
	if name := os.Getenv(containedHostEnv); name != "" {
		runContainedHost(name)
		return
	}
	if path := os.Getenv(storeWriterEnv); path != "" {
		runStoreWriter(path)
		return
	}
	// The run that proves the process-group fallback sets it.
	forceProcessGroups = os.Getenv("TEND_TEST_PROCESS_GROUPS") != ""
	os.Exit(testagent.Main(m, &agentPath))
}

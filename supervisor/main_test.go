package supervisor

import (
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
)

// agentPath is the test agent binary, built once for the package.
var agentPath string

// processGroupsOnly is set for the run that proves the process-group
// fallback (TEND_TEST_PROCESS_GROUPS): the tests' Groups then have
// containment disabled (see testGroupOptions).
var processGroupsOnly bool

// testGroupOptions is opts as the tests' Groups get them.
func testGroupOptions(opts GroupOptions) GroupOptions {
	opts.Containment.Disabled = opts.Containment.Disabled || processGroupsOnly
	return opts
}

// testHosts are the helper hosts the test binary can act as, by the
// environment variable that selects one; platform files add theirs.
var testHosts = map[string]func(value string){}

func TestMain(m *testing.M) {
	// Re-executed test binaries acting as helper processes.
	if os.Getenv(helperEnv) != "" {
		runHelper()
		return
	}
	for env, run := range testHosts {
		if v := os.Getenv(env); v != "" {
			run(v)
			return
		}
	}
	if path := os.Getenv(storeWriterEnv); path != "" {
		runStoreWriter(path)
		return
	}
	processGroupsOnly = os.Getenv("TEND_TEST_PROCESS_GROUPS") != ""
	os.Exit(testagent.Main(m, &agentPath))
}

package metrics_test

import (
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
)

// agentPath is the test agent binary, built once for the package.
var agentPath string

func TestMain(m *testing.M) { os.Exit(testagent.Main(m, &agentPath)) }

package health

import (
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
)

var agentPath string

func TestMain(m *testing.M) {
	if path := os.Getenv(exhaustedServerEnv); path != "" {
		os.Exit(runExhaustedServer(path))
	}
	os.Exit(testagent.Main(m, &agentPath))
}

package health

import (
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
)

var agentPath string

func TestMain(m *testing.M) {
	os.Exit(testagent.Main(m, &agentPath))
}

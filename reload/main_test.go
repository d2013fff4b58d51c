package reload

import (
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
)

var agentPath string

const writerEnv = "TEND_RELOAD_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		writeForever(path)
		return
	}
	os.Exit(testagent.Main(m, &agentPath))
}

package reload

import (
	"fmt"
	"os"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
	"go.uber.org/goleak"
)

var agentPath string

const writerEnv = "TEND_RELOAD_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		writeForever(path)
		return
	}
	dir, err := os.MkdirTemp("", "tend-reload-test")
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

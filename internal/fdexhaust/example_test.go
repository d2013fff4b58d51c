//go:build linux

package fdexhaust_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/tend-dev/tend/internal/fdexhaust"
)

const helperEnv = "FDEXHAUST_EXAMPLE_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helper()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helper runs in a process of its own: Exhaust affects the whole process.
func helper() {
	release, err := fdexhaust.Exhaust()
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = os.Open(os.DevNull)
	fmt.Println("while exhausted:", err)
	release()
	f, err := os.Open(os.DevNull)
	fmt.Println("after release:", err)
	f.Close()
}

// The test binary re-executes itself as the helper process.
func Example() {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.Output()
	fmt.Print(string(out), err)
	// Output:
	// while exhausted: open /dev/null: too many open files
	// after release: <nil>
	// <nil>
}

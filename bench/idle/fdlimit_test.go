//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/tend-dev/tend/internal/procfs"
)

const fdLimitEnv = "TEND_IDLE_FD_LIMIT_MODE"

// The test binary re-executed with fdLimitEnv set is the helper.
func init() {
	if mode := os.Getenv(fdLimitEnv); mode != "" {
		os.Exit(outOfDescriptors(mode))
	}
}

// More agents than the open-files limit allows: the start fails with a
// clear error and leaves no child behind, in either mode.
func TestStartOutOfDescriptorsLeavesNothing(t *testing.T) {
	for _, mode := range []string{"bare", "tend"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fdLimitEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", mode, err, out)
		}
	}
}

func outOfDescriptors(mode string) int {
	lim := syscall.Rlimit{Cur: 64, Max: 64}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println(err)
		return 1
	}
	_, err := measure(mode, 200, 0, true)
	if err == nil || !strings.Contains(err.Error(), "too many open files") {
		fmt.Println("start of 200 agents under a limit of 64 descriptors:", err)
		return 1
	}
	if left := liveChildren(); len(left) > 0 {
		fmt.Printf("%d children left after the failed start: %v\n", len(left), left)
		return 1
	}
	return 0
}

func liveChildren() []int {
	out, _ := procfs.Find(func(_ int, st procfs.Stat) bool { return st.PPID == os.Getpid() && st.Live() })
	return out
}

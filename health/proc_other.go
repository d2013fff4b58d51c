//go:build !linux

package health

import (
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// procInfo is what a Resources probe needs of one process.
type procInfo struct {
	ppid  int
	start uint64 // when it started, in a unit of the platform: tells PID reuse
	cpu   time.Duration
	rss   uint64
	live  bool // not a zombie
}

// readProc reads one process through gopsutil where there is no /proc
// (macOS, the BSDs).
func readProc(pid int, _ []byte) (procInfo, error) {
	return readProcGopsutil(pid)
}

// processIDs lists every process.
func processIDs() ([]int, error) {
	pids, err := process.Pids()
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out, err
}

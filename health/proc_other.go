//go:build !linux

package health

import (
	"github.com/shirou/gopsutil/v3/process"
)

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

//go:build !linux

package health

import (
	"slices"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// readProcGopsutil reads one process through gopsutil v3, where there is
// no /proc. (On Linux the /proc reader is tested against gopsutil, which
// only that test links.)
func readProcGopsutil(pid int) (procInfo, error) {
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return procInfo{}, err
	}
	times, err := p.Times()
	if err != nil {
		return procInfo{}, err
	}
	mem, err := p.MemoryInfo()
	if err != nil {
		return procInfo{}, err
	}
	created, err := p.CreateTime()
	if err != nil {
		return procInfo{}, err
	}
	ppid, err := p.Ppid()
	if err != nil {
		return procInfo{}, err
	}
	status, _ := p.Status()
	return procInfo{ppid: int(ppid), start: uint64(created),
		cpu:  time.Duration((times.User + times.System) * float64(time.Second)),
		rss:  mem.RSS,
		live: !slices.Contains(status, process.Zombie)}, nil
}

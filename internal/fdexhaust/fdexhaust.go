//go:build linux

// Package fdexhaust uses up a process's file descriptors, for tests of
// what tend does when the host has none left. Call it only in a helper
// process of its own: the whole process is affected.
package fdexhaust

import (
	"fmt"
	"os"
	"syscall"
)

// Exhaust lowers the soft open-files limit to a little above the number
// of descriptors open now and opens /dev/null until no descriptor is
// left. release closes those files; the lowered limit stays.
func Exhaust() (release func(), err error) {
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}
	lim.Cur = uint64(len(open) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("lower the open-files limit: %w", err)
	}
	var fillers []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			break
		}
		fillers = append(fillers, f)
	}
	return func() {
		for _, f := range fillers {
			f.Close()
		}
	}, nil
}

//go:build linux

package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// samples are the host's resources over the run: minimum and maximum.
type samples struct {
	n                      int
	rssMin, rssMax         int64 // KiB
	threadsMin, threadsMax int
	fdsMin, fdsMax         int
	goroutinesMax          int
}

type sampler struct {
	stopc chan struct{}
	done  sync.WaitGroup
	s     samples
}

func startSampling(every time.Duration) *sampler {
	sp := &sampler{stopc: make(chan struct{})}
	sp.done.Add(1)
	go func() {
		defer sp.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sp.take()
			select {
			case <-t.C:
			case <-sp.stopc:
				return
			}
		}
	}()
	return sp
}

func (sp *sampler) stop() samples {
	close(sp.stopc)
	sp.done.Wait()
	return sp.s
}

func (sp *sampler) take() {
	rss, threads := status()
	fds := -1
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(entries)
	}
	s := &sp.s
	if s.n == 0 {
		s.rssMin, s.threadsMin, s.fdsMin = rss, threads, fds
	}
	s.n++
	s.rssMin, s.rssMax = min(s.rssMin, rss), max(s.rssMax, rss)
	s.threadsMin, s.threadsMax = min(s.threadsMin, threads), max(s.threadsMax, threads)
	if fds >= 0 {
		s.fdsMin, s.fdsMax = min(s.fdsMin, fds), max(s.fdsMax, fds)
	}
	s.goroutinesMax = max(s.goroutinesMax, runtime.NumGoroutine())
}

// status reads VmRSS (KiB) and Threads from /proc/self/status.
func status() (rss int64, threads int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rss, _ = strconv.ParseInt(f[0], 10, 64)
		case "Threads":
			threads, _ = strconv.Atoi(f[0])
		}
	}
	return rss, threads
}

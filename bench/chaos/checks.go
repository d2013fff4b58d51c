//go:build linux

package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
	"github.com/tend-dev/tend/logs"
)

// report holds the figures of one run.
type report struct {
	seed                    int64
	faults                  map[string]int
	events, missedEvents    int
	children                int
	calls                   int
	late                    []string
	maxLate                 time.Duration
	rejectedApplies         int
	stopAll, stopAllLimit   time.Duration
	orphans, zombies        []int
	goroutinesLeft          int
	linesWritten, linesLost int
	linesInWindows          int
	lostRuns                []string
	mixed                   []string // lines glued to others: never expected
	torn                    int      // fragments of lines a full disk cut short
	windows                 int
	maxBackoff              time.Duration
	overCeiling             []string
	budgetMax, budgetLimit  int
	budgeted                int
	samples                 samples
}

func run(o options) (*report, error) {
	baseline := runtime.NumGoroutine()
	h, err := newHost(o)
	if h != nil {
		defer h.close()
	}
	if err != nil {
		return nil, err
	}
	start, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.group.StartAll(start); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	sampler := startSampling(time.Second)
	in := &injector{h: h, rnd: rand.New(rand.NewPCG(uint64(o.seed), 0)), counts: map[string]int{}}
	stopWatch := make(chan struct{})
	watching := make(chan struct{})
	go func() { in.watchWriteErrors(stopWatch); close(watching) }()
	in.inject(o.duration, o.faultEvery)

	r := &report{seed: o.seed, faults: in.counts, calls: in.calls, late: in.late, maxLate: in.maxLate,
		rejectedApplies: in.rejected}
	r.stopAllLimit = 10 * time.Second
	stop, cancelStop := context.WithTimeout(context.Background(), r.stopAllLimit)
	defer cancelStop()
	began := time.Now()
	if err := h.group.StopAll(stop); err != nil {
		return nil, fmt.Errorf("StopAll: %w", err)
	}
	r.stopAll = time.Since(began)
	r.samples = sampler.stop()
	close(stopWatch)
	<-watching

	h.events.mu.Lock()
	r.events, r.missedEvents, r.children = h.events.count, h.events.missed, len(h.events.pids)
	r.budgeted = h.events.budgeted
	pids := slices.Collect(maps.Keys(h.events.pids))
	restarts := slices.Clone(h.events.restarts)
	delays := slices.Clone(h.events.delays)
	h.events.mu.Unlock()

	r.orphans = survivors(pids, h.bin)
	r.zombies = zombieChildren()
	r.checkBackoff(delays)
	r.budgetLimit = h.budget.Restarts
	r.budgetMax = busiestWindow(restarts, budgetPer)
	for _, a := range h.agents {
		a.log.Close()
	}
	r.windows = len(in.windows)
	if err := r.checkLines(h, in.windows); err != nil {
		return nil, err
	}
	h.cancel()
	h.serving.Wait()
	r.goroutinesLeft = settle(baseline)
	return r, nil
}

// survivors lists the processes still running that the run started: any
// child ever spawned, anything in the group of one, anything running the
// agent binary (an escaped grandchild).
func survivors(spawned []int, bin string) []int {
	leaders := map[int]bool{}
	for _, p := range spawned {
		leaders[p] = true
	}
	out, _ := procfs.Find(func(pid int, st procfs.Stat) bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		return st.Live() && (leaders[pid] || leaders[st.PGRP] || strings.HasPrefix(exe, bin))
	})
	return out
}

// zombieChildren lists this process's children that nobody reaped.
func zombieChildren() []int {
	out, _ := procfs.Find(func(_ int, st procfs.Stat) bool { return st.PPID == os.Getpid() && !st.Live() })
	return out
}

// checkBackoff holds every planned restart delay to the policy's ceiling
// (or the spawn-failure floor, if higher).
func (r *report) checkBackoff(delays []delay) {
	ceiling := max(backoffMax, 100*time.Millisecond) + time.Millisecond // planned from the reap, in ns
	for _, d := range delays {
		r.maxBackoff = max(r.maxBackoff, d.wait)
		if d.wait > ceiling {
			r.overCeiling = append(r.overCeiling, fmt.Sprintf("%s waited %v after %s", d.agent, d.wait, d.reason))
		}
	}
}

// busiestWindow returns the most restarts planned within any window of per.
func busiestWindow(times []time.Time, per time.Duration) int {
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	most, j := 0, 0
	for i := range times {
		for times[i].Sub(times[j]) >= per {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

// checkLines reads every agent's log and compares it with what each
// process says it wrote: a number missing from a process's sequence is a
// lost line, excused only when it fell in a window when writes fail as
// documented (disk full, descriptors used up, write errors the Rotator
// counted).
func (r *report) checkLines(h *host, windows []window) error {
	counts, err := h.seqCounts()
	if err != nil {
		return err
	}
	seen := map[int]map[int]int64{} // pid -> n -> time written
	for _, a := range h.agents {
		err := logs.Search(context.Background(), a.log.Path(), logs.Query{Substring: "seq "}, func(m logs.Match) bool {
			if strings.Count(m.Text, "seq ") > 1 {
				r.mixed = append(r.mixed, m.Text)
			}
			pid, n, at, ok := parseSeq(m.Text)
			if !ok {
				r.torn++
				return true
			}
			if seen[pid] == nil {
				seen[pid] = map[int]int64{}
			}
			seen[pid][n] = at
			return true
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", a.name, err)
		}
	}
	for pid, wrote := range counts {
		r.linesWritten += wrote
		got := seen[pid]
		for n := 1; n <= wrote; n++ {
			if _, ok := got[n]; ok {
				continue
			}
			if from, to := neighbourTimes(got, n, wrote); inWindow(from, to, windows) {
				r.linesInWindows++
				continue
			}
			r.linesLost++
			if len(r.lostRuns) < 10 {
				end := h.events.ends[pid]
				if end == "" {
					end = "not a child tend spawned: a grandchild"
				}
				from, _ := neighbourTimes(got, n, wrote)
				r.lostRuns = append(r.lostRuns, fmt.Sprintf("pid %d line %d of %d (previous line at %s; %s)",
					pid, n, wrote, from.Format("15:04:05.000"), end))
			}
		}
	}
	return nil
}

// parseSeq reads a "stdout: seq PID N UNIXNANO" line as the Streams wrote it.
func parseSeq(line string) (pid, n int, at int64, ok bool) {
	_, rest, found := strings.Cut(line, "seq ")
	f := strings.Fields(rest)
	if !found || len(f) != 3 {
		return 0, 0, 0, false
	}
	pid, e1 := strconv.Atoi(f[0])
	n, e2 := strconv.Atoi(f[1])
	at, e3 := strconv.ParseInt(f[2], 10, 64)
	return pid, n, at, e1 == nil && e2 == nil && e3 == nil
}

// neighbourTimes bounds when line n was written by the lines around it
// that did arrive (the run's start or end where there are none).
func neighbourTimes(got map[int]int64, n, wrote int) (from, to time.Time) {
	from, to = time.Time{}, time.Now()
	for k := n - 1; k >= 1; k-- {
		if at, ok := got[k]; ok {
			from = time.Unix(0, at)
			break
		}
	}
	for k := n + 1; k <= wrote; k++ {
		if at, ok := got[k]; ok {
			to = time.Unix(0, at)
			break
		}
	}
	return from, to
}

// inWindow reports whether [from, to] overlaps a window, widened by a
// second at its end for lines that were still in a pipe or a Stream when
// the window closed.
func inWindow(from, to time.Time, windows []window) bool {
	for _, w := range windows {
		if !to.Before(w.start) && !from.After(w.end.Add(time.Second)) {
			return true
		}
	}
	return false
}

// settle waits for the goroutines to come back to baseline and returns how
// many are left over.
func settle(baseline int) int {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if runtime.NumGoroutine() <= baseline {
			return 0
		}
	}
	return max(runtime.NumGoroutine()-baseline, 0)
}

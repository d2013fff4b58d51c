//go:build linux

package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// broken lists the promises the run saw broken.
func (r *report) broken() []string {
	var out []string
	add := func(cond bool, format string, args ...any) {
		if cond {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	add(len(r.orphans) > 0, "%d orphans %v", len(r.orphans), r.orphans)
	add(len(r.zombies) > 0, "%d zombies %v", len(r.zombies), r.zombies)
	add(r.goroutinesLeft > 0, "%d goroutines left", r.goroutinesLeft)
	add(r.linesLost > 0, "%d lines lost outside documented windows, e.g. %v", r.linesLost, r.lostRuns)
	add(len(r.mixed) > 0, "%d lines glued to others, e.g. %q", len(r.mixed), r.mixed[:min(len(r.mixed), 3)])
	add(len(r.late) > 0, "%d calls past their deadline, e.g. %v", len(r.late), r.late[:min(len(r.late), 5)])
	add(r.stopAll > r.stopAllLimit, "StopAll took %v of its %v", r.stopAll, r.stopAllLimit)
	add(len(r.overCeiling) > 0, "%d restarts beyond the backoff ceiling, e.g. %v", len(r.overCeiling), r.overCeiling[:min(len(r.overCeiling), 5)])
	add(r.budgetMax > r.budgetLimit, "%d restarts in one budget window of %v, budget %d", r.budgetMax, budgetPer, r.budgetLimit)
	return out
}

func (r *report) print(w io.Writer) {
	var faults []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(r.faults)) {
		faults = append(faults, fmt.Sprintf("%s %d", k, r.faults[k]))
		total += r.faults[k]
	}
	s := r.samples
	rows := [][2]string{
		{"faults", fmt.Sprintf("%d (%s)", total, strings.Join(faults, ", "))},
		{"children spawned", fmt.Sprint(r.children)},
		{"events (missed)", fmt.Sprintf("%d (%d)", r.events, r.missedEvents)},
		{"orphans / zombies", fmt.Sprintf("%d / %d", len(r.orphans), len(r.zombies))},
		{"goroutines left after stop", fmt.Sprint(r.goroutinesLeft)},
		{"lines written / lost", fmt.Sprintf("%d / %d", r.linesWritten, r.linesLost)},
		{"fragments of lines cut short by a full disk", fmt.Sprint(r.torn)},
		{"lines lost in documented drops", fmt.Sprintf("%d (%d windows of a full disk, no descriptors or write errors the Rotator counted)", r.linesInWindows, r.windows)},
		{"calls / past deadline+" + callSlack.String(), fmt.Sprintf("%d / %d (latest return %v after its deadline)", r.calls, len(r.late), r.maxLate.Round(time.Millisecond))},
		{"Applies rejected (binary gone)", fmt.Sprint(r.rejectedApplies)},
		{"StopAll", fmt.Sprintf("%v of %v", r.stopAll.Round(time.Millisecond), r.stopAllLimit)},
		{"longest planned backoff", fmt.Sprintf("%v (ceiling %v)", r.maxBackoff.Round(time.Millisecond), backoffMax)},
		{"restarts in the busiest budget window", fmt.Sprintf("%d (budget %d per %v; %d restarts delayed by it)", r.budgetMax, r.budgetLimit, budgetPer, r.budgeted)},
		{"host RSS", fmt.Sprintf("%d-%d KiB", s.rssMin, s.rssMax)},
		{"host threads", fmt.Sprintf("%d-%d", s.threadsMin, s.threadsMax)},
		{"host fds", fmt.Sprintf("%d-%d", s.fdsMin, s.fdsMax)},
		{"goroutines (max)", fmt.Sprint(s.goroutinesMax)},
	}
	fmt.Fprintln(w, "| figure | value |")
	fmt.Fprintln(w, "|---|---|")
	for _, row := range rows {
		fmt.Fprintf(w, "| %s | %s |\n", row[0], row[1])
	}
}

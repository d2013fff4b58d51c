//go:build linux

package main

import (
	"testing"
	"time"
)

func TestBusiestWindow(t *testing.T) {
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, time.Unix(0, 0).Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	cases := []struct {
		times []time.Time
		want  int
	}{
		{nil, 0},
		{at(0, 0, 0), 3},
		{at(0, 999, 1000, 1500), 3}, // [1000, 2000) holds 1000 and 1500; [0, 1000) holds 0 and 999; [999, 1999) holds three
		{at(3000, 0, 1000, 2000), 1},
	}
	for _, c := range cases {
		if got := busiestWindow(c.times, time.Second); got != c.want {
			t.Errorf("busiestWindow(%v) = %d, want %d", c.times, got, c.want)
		}
	}
}

// A missing line is excused only when the lines around it bracket a
// window of documented failures.
func TestLostLineClassification(t *testing.T) {
	base := time.Unix(1000, 0)
	got := map[int]int64{1: base.UnixNano(), 2: base.Add(time.Second).UnixNano(), 5: base.Add(10 * time.Second).UnixNano()}
	from, to := neighbourTimes(got, 3, 6)
	if !from.Equal(base.Add(time.Second)) || !to.Equal(base.Add(10*time.Second)) {
		t.Fatalf("line 3 bracketed by %v..%v", from, to)
	}
	full := []window{{"disk full", base.Add(4 * time.Second), base.Add(6 * time.Second)}}
	if !inWindow(from, to, full) {
		t.Fatal("a line lost across a disk-full window was not excused")
	}
	if inWindow(base, base.Add(time.Second), full) {
		t.Fatal("a line lost before the window was excused")
	}
	if pid, n, at, ok := parseSeq("2026-12-03T06:00:00Z stdout: seq 42 7 123"); !ok || pid != 42 || n != 7 || at != 123 {
		t.Fatalf("parseSeq = %d %d %d %v", pid, n, at, ok)
	}
}

// A short run of the whole suite keeps every promise.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real agents for several seconds")
	}
	r, err := run(options{seed: 1, duration: 3 * time.Second, agents: 6, faultEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if broken := r.broken(); len(broken) > 0 || r.children < 6 || r.linesWritten == 0 {
		t.Fatalf("broken %v, %d children, %d lines", broken, r.children, r.linesWritten)
	}
}

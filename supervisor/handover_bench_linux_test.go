package supervisor

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHandover hands a host of N agents over to a new copy of its
// binary, b.N times, and reports from the Handover call to the new
// binary's Launch returning with every agent resumed (ms/handover, and
// the longest, max-ms), the longest gap between two lines reaching a steady printer's log across
// all of them (max-gap-ms), and the same time for a host that only
// re-execs itself (bare-exec-ms), measured in the same run: what is
// tend's and what is the exec's.
func BenchmarkHandover(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) {
			bare := meanResume(b, b.N, hoBare+"=1")
			dir := b.TempDir()
			cmd := handoverHost(b, dir, hoAgents+"=bench-"+strconv.Itoa(n))
			waitReport(b, dir, 0)
			time.Sleep(100 * time.Millisecond) // past the start-up, whose spawns slow everything
			logPath := filepath.Join(dir, "print-00.log")
			steady := fileSize(b, logPath)
			var total, longest time.Duration
			b.ResetTimer()
			for gen := 1; gen <= b.N; gen++ {
				cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // the report says
				r := waitReport(b, dir, gen)
				if len(r.Result.Resumed) != n {
					b.Fatalf("generation %d resumed %d of %d agents", gen, len(r.Result.Resumed), n)
				}
				total += r.ResumedIn
				longest = max(longest, r.ResumedIn)
				time.Sleep(20 * time.Millisecond) // steady output between hand-overs
			}
			b.StopTimer()
			stopHost(b, cmd)
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/handover")
			b.ReportMetric(float64(longest.Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(bare.Microseconds())/1000, "bare-exec-ms")
			b.ReportMetric(float64(maxLineGap(b, logPath, steady).Microseconds())/1000, "max-gap-ms")
		})
	}
}

// meanResume is the mean exec-to-main time of the bare host over n execs.
func meanResume(b *testing.B, n int, env ...string) time.Duration {
	dir := b.TempDir()
	cmd := handoverHost(b, dir, env...)
	waitReport(b, dir, 0)
	var total time.Duration
	for gen := 1; gen <= n; gen++ {
		cmd.Process.Signal(syscall.SIGUSR2) //nolint:errcheck // the report says
		total += waitReport(b, dir, gen).ResumedIn
	}
	stopHost(b, cmd)
	return total / time.Duration(n)
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// maxLineGap is the longest time between the stamps of two consecutive
// lines of a log written with an RFC 3339 timestamp prefix, from offset
// on.
func maxLineGap(b *testing.B, path string, offset int64) time.Duration {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, 0); err != nil {
		b.Fatal(err)
	}
	var last time.Time
	var gap time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		stamp, _, _ := strings.Cut(sc.Text(), " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		if !last.IsZero() {
			gap = max(gap, at.Sub(last))
		}
		last = at
	}
	return gap
}

package logs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkWrite writes 1 MiB per op to a Rotator (rotating every 10 MiB)
// and 1 MiB to a plain *os.File in the same run, as 100-byte lines or as
// 64 KiB chunks, and reports both throughputs and their ratio.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		name  string
		chunk int
	}{{"lines100B", 100}, {"chunks64KiB", 64 << 10}} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			r, err := New(Options{Path: filepath.Join(dir, "rot.log"), MaxSizeMB: 10, MaxBackups: 3})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			plain, err := os.OpenFile(filepath.Join(dir, "plain.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
			if err != nil {
				b.Fatal(err)
			}
			defer plain.Close()
			payload := bytes.Repeat(append(bytes.Repeat([]byte("x"), tc.chunk-1), '\n'), (1<<20)/tc.chunk)
			var rotTime, plainTime time.Duration
			b.SetBytes(int64(len(payload)))
			for i := 0; b.Loop(); i++ {
				t0 := time.Now()
				for off := 0; off < len(payload); off += tc.chunk {
					r.Write(payload[off : off+tc.chunk])
				}
				t1 := time.Now()
				for off := 0; off < len(payload); off += tc.chunk {
					plain.Write(payload[off : off+tc.chunk])
				}
				plainTime += time.Since(t1)
				rotTime += t1.Sub(t0)
				if i%10 == 9 { // keep the plain file about as large as the rotator's
					plain.Truncate(0)
				}
			}
			mb := float64(b.N*len(payload)) / 1e6
			b.ReportMetric(mb/rotTime.Seconds(), "rotator-MB/s")
			b.ReportMetric(mb/plainTime.Seconds(), "file-MB/s")
			b.ReportMetric(plainTime.Seconds()/rotTime.Seconds(), "rotator/file")
		})
	}
}

// BenchmarkTail100From1GB tails 100 lines of a 1 GB log file.
func BenchmarkTail100From1GB(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	block := bytes.Repeat(append(bytes.Repeat([]byte("t"), 99), '\n'), 10486)
	for written := 0; written < 1e9; written += len(block) {
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	for b.Loop() {
		lines, err := Tail(path, 100)
		if err != nil || len(lines) != 100 {
			b.Fatalf("Tail: %d lines, %v", len(lines), err)
		}
	}
}

// BenchmarkSearchGzip searches 32 MB of log lines in a gzipped backup;
// the throughput counts uncompressed bytes.
func BenchmarkSearchGzip(b *testing.B) {
	path := filepath.Join(b.TempDir(), "agent.log")
	var content bytes.Buffer
	for content.Len() < 32e6 {
		content.WriteString("2026-11-29T05:00:00Z info shipping batch to output elasticsearch host=10.0.0.7 events=512\n")
	}
	content.WriteString("2026-11-29T05:00:01Z error connection refused\n")
	writeLogSet(b, path, "", []string{content.String()}, []bool{true})
	b.SetBytes(int64(content.Len()))
	for b.Loop() {
		found := 0
		if err := Search(context.Background(), path, Query{Substring: "connection refused"}, func(Match) bool { found++; return true }); err != nil || found != 1 {
			b.Fatalf("found %d, %v", found, err)
		}
	}
}

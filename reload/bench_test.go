package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRenameToCallback measures the time from an atomic rename of a
// watched file to the host function's call, minus the debounce (10ms here).
func BenchmarkRenameToCallback(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	os.WriteFile(path, []byte("v: 0\n"), 0o644)
	const debounce = 10 * time.Millisecond
	called := make(chan time.Time, 1)
	w, _ := NewWatcher(Options{Debounce: debounce}, func(context.Context, Change) { called <- time.Now() })
	w.Add(path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		tmp := filepath.Join(dir, ".tmp")
		os.WriteFile(tmp, []byte(fmt.Sprintf("v: %d\n", i+1)), 0o644)
		start := time.Now()
		os.Rename(tmp, path)
		total += (<-called).Sub(start) - debounce
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-after-debounce")
}

package logs

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"go.uber.org/goleak"
)

func newRotator(t *testing.T, opts Options) *Rotator {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readAll returns the content of the live file and all backups, oldest
// first, gunzipping the compressed ones.
func readAll(t *testing.T, path string) (string, []logFile) {
	t.Helper()
	all, err := files(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := len(all) - 1; i >= 0; i-- {
		b.WriteString(readFile(t, all[i]))
	}
	return b.String(), all
}

func readFile(t *testing.T, f logFile) string {
	t.Helper()
	fh, err := os.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var r io.Reader = fh
	if f.gzipped {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", f.path, err)
	}
	return string(b)
}

func numbered(n int, width int) []byte {
	var b bytes.Buffer
	for i := range n {
		line := fmt.Sprintf("line %08d ", i)
		b.WriteString(line + strings.Repeat("x", width-len(line)-1) + "\n")
	}
	return b.Bytes()
}

func TestRotatesBySizeWithoutLosingOrSplittingLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path, MaxSizeMB: 1})
	data := numbered(35000, 100) // 3.5 MB
	for off := 0; off < len(data); off += 4000 {
		r.Write(data[off:min(off+4000, len(data))])
	}
	got, all := readAll(t, path)
	if got != string(data) {
		t.Fatalf("content across files differs from what was written (%d vs %d bytes)", len(got), len(data))
	}
	if len(all) != 4 {
		t.Fatalf("%d files, want the live one and 3 backups", len(all))
	}
	for _, f := range all {
		content := readFile(t, f)
		if len(content) > 1<<20 || !strings.HasSuffix(content, "\n") {
			t.Errorf("%s: %d bytes, ends %q: want <= 1 MiB ending in a whole line", f.path, len(content), content[max(0, len(content)-5):])
		}
	}
	if st := r.Stats(); st.Rotations != 3 || st.BytesWritten != int64(len(data)) || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWriteLargerThanMaxSizeIsSplitNotRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path, MaxSizeMB: 1})
	data := numbered(25000, 100) // 2.5 MB in one Write
	if n, err := r.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	got, _ := readAll(t, path)
	if got != string(data) {
		t.Fatalf("lost data: wrote %d bytes, files hold %d", len(data), len(got))
	}
}

func TestBackupsCountCompressionAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "agent")
	path := filepath.Join(dir, "agent.log")
	r := newRotator(t, Options{Path: path, MaxSizeMB: 1, MaxBackups: 2, Compress: true})
	for range 5 {
		r.Write(numbered(10000, 100))
	}
	r.Close() // returns once compression and pruning are done
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("right after Close the directory holds %v, want the live file and 2 backups", entries)
	}
	all, _ := files(path)
	if len(all) != 3 || !all[1].gzipped || !all[2].gzipped {
		t.Fatalf("right after Close: files %+v, want live + 2 gzipped backups", all)
	}
	readAll(t, path) // gunzips every backup: fails on an invalid archive
	for _, f := range all {
		if info, _ := os.Stat(f.path); info.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v, want 0640", f.path, info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o750 {
		t.Errorf("directory mode %v, want 0750", info.Mode().Perm())
	}
}

// Readers right after Close find every line: Close waited for the
// compression, so no backup vanishes under them.
func TestReadersRightAfterClose(t *testing.T) {
	for i := range 5 {
		path := filepath.Join(t.TempDir(), "agent.log")
		r, err := New(Options{Path: path, MaxSizeMB: 1, MaxBackups: 3, Compress: true})
		if err != nil {
			t.Fatal(err)
		}
		r.Write(numbered(30000, 100)) // three backups of 1 MiB to compress
		r.Close()
		lines, err := Tail(path, 25000)
		if err != nil || len(lines) != 25000 || lines[0] != string(numbered(30000, 100)[5000*100:5000*100+99]) {
			t.Fatalf("round %d: Tail after Close: %d lines, %v", i, len(lines), err)
		}
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	path := filepath.Join(t.TempDir(), "agent.log")
	r, err := New(Options{Path: path, MaxSizeMB: 1, Compress: true, RotateEvery: config.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Stream("stdout")
	s.Write([]byte("partial line"))
	r.Write(numbered(20000, 100))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
	if n, err := r.Write([]byte("late\n")); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %d, %v; want ErrClosed", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := readFile(t, logFile{path: path}); !strings.HasSuffix(got, "partial line\n") && !strings.Contains(got, "partial line\n") {
		t.Fatalf("Close did not flush the partial line; live file ends %q", got[max(0, len(got)-30):])
	}
}

// lumberjack names backups by the millisecond; back-to-back rotations
// must not overwrite each other.
func TestBackToBackRotationsKeepEveryBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path})
	for i := range 50 {
		fmt.Fprintf(r, "generation %d\n", i)
		if err := r.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	got, all := readAll(t, path)
	if len(all) != 51 {
		t.Fatalf("%d files, want 50 backups and the live file", len(all))
	}
	for i := range 50 {
		if !strings.Contains(got, fmt.Sprintf("generation %d\n", i)) {
			t.Fatalf("generation %d lost", i)
		}
	}
}

func TestRotateEvery(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 1s rotation")
	}
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path, RotateEvery: config.Duration(time.Second)})
	r.Write([]byte("first period\n"))
	time.Sleep(1300 * time.Millisecond)
	if st := r.Stats(); st.Rotations != 1 {
		t.Fatalf("%d rotations after one period with data, want 1", st.Rotations)
	}
	time.Sleep(1100 * time.Millisecond)
	if st := r.Stats(); st.Rotations != 1 {
		t.Fatalf("%d rotations after an idle period, want still 1 (no empty backups)", st.Rotations)
	}
}

func TestNextRotation(t *testing.T) {
	at := time.Date(2026, 3, 29, 0, 30, 15, 0, time.UTC)
	tests := []struct {
		opts Options
		want time.Time
	}{
		{Options{RotateAt: "hourly"}, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{Options{RotateAt: "daily"}, time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)},
		{Options{RotateEvery: config.Duration(90 * time.Second)}, at.Add(90 * time.Second)},
		{Options{}, time.Time{}},
	}
	for _, tt := range tests {
		if got := tt.opts.nextRotation(at); !got.Equal(tt.want) {
			t.Errorf("%+v: next %v, want %v", tt.opts, got, tt.want)
		}
	}
}

func TestStreamsNeverInterleaveInsideALine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path, MaxSizeMB: 1})
	var wg sync.WaitGroup
	const lines = 20000
	for _, name := range []string{"stdout", "stderr"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := r.Stream(name)
			var buf bytes.Buffer
			for i := range lines {
				fmt.Fprintf(&buf, "%s line %d %s\n", name, i, strings.Repeat(name[3:], i%50))
			}
			data := buf.Bytes()
			for step := 1; len(data) > 0; step = step%97 + 13 { // odd chunk sizes cut lines anywhere
				k := min(step, len(data))
				s.Write(data[:k])
				data = data[k:]
			}
		}()
	}
	wg.Wait()
	got, _ := readAll(t, path)
	next := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		var name string
		var i int
		if _, err := fmt.Sscanf(l, "%s line %d", &name, &i); err != nil || i != next[name] {
			t.Fatalf("line %q: want %s line %d (err %v)", l, name, next[name], err)
		}
		if want := fmt.Sprintf("%s line %d %s", name, i, strings.Repeat(name[3:], i%50)); l != want {
			t.Fatalf("torn line %q, want %q", l, want)
		}
		next[name]++
	}
	if next["stdout"] != lines || next["stderr"] != lines {
		t.Fatalf("lines per stream %v, want %d each", next, lines)
	}
}

func TestStreamPrefixAndPartialFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path, Prefix: Prefix{Timestamp: "2006-01-02", Stream: true}})
	s := r.Stream("stderr")
	s.Write([]byte("one\ntw"))
	s.Write([]byte("o\nunfinished"))
	today := time.Now().Format("2006-01-02")
	want := today + " stderr: one\n" + today + " stderr: two\n"
	if got := readFile(t, logFile{path: path}); got != want {
		t.Fatalf("file %q, want %q", got, want)
	}
	time.Sleep(DefaultPartialLineWait + 300*time.Millisecond)
	want += today + " stderr: unfinished\n"
	if got := readFile(t, logFile{path: path}); got != want {
		t.Fatalf("after idle flush: %q, want %q", got, want)
	}
}

func TestStreamWriteAllocatesNothingPerLine(t *testing.T) {
	r := newRotator(t, Options{Path: filepath.Join(t.TempDir(), "agent.log"), Prefix: Prefix{Timestamp: time.RFC3339, Stream: true}})
	s := r.Stream("stdout")
	chunk := numbered(40, 100)
	s.Write(chunk) // grow the scratch buffer once
	allocs := testing.AllocsPerRun(50, func() { s.Write(chunk) })
	if allocs > 1 {
		t.Fatalf("%.1f allocations per 40-line write, want at most 1", allocs)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, `"path"`},
		{Options{Path: "x.log", MaxSizeMB: -1}, `"max_size_mb" = -1`},
		{Options{Path: "x.log", MaxBackups: -2}, `"max_backups"`},
		{Options{Path: "x.log", RotateAt: "weekly"}, `"rotate_at" = weekly`},
		{Options{Path: "x.log", RotateEvery: config.Duration(time.Millisecond)}, `"rotate_every"`},
		{Options{Path: filepath.Join(file, "sub", "x.log")}, filepath.Join(file, "sub")},
	}
	for _, tt := range tests {
		r, err := New(tt.opts)
		if err == nil {
			r.Close()
			t.Errorf("New(%+v) succeeded", tt.opts)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want it to mention %s", tt.opts, err, tt.want)
		}
	}
}

func TestModeJSON(t *testing.T) {
	var o Options
	if err := jsonUnmarshal(`{"path":"a","file_mode":"0604","dir_mode":755}`, &o); err != nil {
		t.Fatal(err)
	}
	if o.FileMode != 0o604 || o.DirMode != 0o755 {
		t.Fatalf("modes %o %o", o.FileMode, o.DirMode)
	}
	if err := jsonUnmarshal(`{"file_mode":"0999"}`, &o); err == nil {
		t.Fatal("bad octal accepted")
	}
}

func TestRotationKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path})
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	r.Write([]byte("x\n"))
	r.Rotate()
	info, _ := os.Stat(path)
	if st := info.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("new live file owned by %d:%d, want 65534:65534", st.Uid, st.Gid)
	}
}

// TakePartial hands over the unfinished line without writing it, and
// stops its idle flush: written again to another Stream of the same file
// (a new binary's), it is completed there, once and whole.
func TestStreamTakePartialMovesTheLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path})
	old := r.Stream("stdout")
	old.Write([]byte("one\nhalf a l"))
	if got := string(old.TakePartial()); got != "half a l" {
		t.Fatalf("TakePartial = %q, want the unfinished line", got)
	}
	if got := old.TakePartial(); got != nil {
		t.Fatalf("second TakePartial = %q, want nil", got)
	}
	next := r.Stream("stdout")
	next.Write([]byte("half a l"))
	next.Write([]byte("ine\n"))
	time.Sleep(DefaultPartialLineWait + 300*time.Millisecond) // the old Stream's idle flush must not fire
	if got := readFile(t, logFile{path: path}); got != "one\nhalf a line\n" {
		t.Fatalf("file %q, want the line once and whole", got)
	}
}

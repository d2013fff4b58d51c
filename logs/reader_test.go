package logs

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeLogSet creates path with live content and backups, oldest given
// first, gzipping those marked, named as lumberjack names them.
func writeLogSet(t testing.TB, path string, live string, backups []string, gz []bool) {
	t.Helper()
	base := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext)
	for i, content := range backups {
		name := stem + "-" + base.Add(time.Duration(i)*time.Hour).Format(backupTimeLayout) + ext
		if gz[i] {
			writeGzip(t, name+".gz", content)
		} else if err := os.WriteFile(name, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, []byte(live), 0o640); err != nil {
		t.Fatal(err)
	}
}

func writeGzip(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte(content))
	zw.Close()
	f.Close()
}

func linesFrom(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

func TestTailAcrossPlainAndGzipBackups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	writeLogSet(t, path, linesFrom("l", 30, 35),
		[]string{linesFrom("l", 0, 10), linesFrom("l", 10, 20), linesFrom("l", 20, 30)},
		[]bool{true, false, true})
	tests := []struct {
		n        int
		from, to int
	}{{3, 32, 35}, {5, 30, 35}, {8, 27, 35}, {17, 18, 35}, {100, 0, 35}}
	for _, tt := range tests {
		got, err := Tail(path, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Split(strings.TrimSuffix(linesFrom("l", tt.from, tt.to), "\n"), "\n")
		if !slices.Equal(got, want) {
			t.Errorf("Tail(%d) = %v, want %v", tt.n, got, want)
		}
	}
}

func TestTailEdgeCases(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("y", 3*tailBlockSize+17)
	tests := []struct {
		name, content string
		n             int
		want          []string
	}{
		{"empty file", "", 5, nil},
		{"no trailing newline", "a\nb\nc", 2, []string{"b", "c"}},
		{"empty lines kept", "a\n\n\nb\n", 3, []string{"", "", "b"}},
		{"single newline", "\n", 3, []string{""}},
		{"line longer than a block", "first\n" + long + "\nlast\n", 2, []string{long, "last"}},
		{"long first line whole", long + "\n", 1, []string{long}},
	}
	for i, tt := range tests {
		path := filepath.Join(dir, fmt.Sprintf("case%d.log", i))
		os.WriteFile(path, []byte(tt.content), 0o640)
		got, err := Tail(path, tt.n)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: Tail = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestSearchNewestFirstWithLimitAndRegexp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	writeLogSet(t, path, "ok\nconnection refused: live\n",
		[]string{"connection refused: oldest\n", "x\nconnection refused: middle\ny\n"},
		[]bool{true, false})
	var got []string
	err := Search(context.Background(), path, Query{Substring: "connection refused"}, func(m Match) bool {
		got = append(got, fmt.Sprintf("%s:%d:%s", filepath.Base(m.File), m.Line, m.Text))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"agent.log:2:connection refused: live",
		"agent-2026-11-01T11-00-00.000.log:2:connection refused: middle",
		"agent-2026-11-01T10-00-00.000.log.gz:1:connection refused: oldest",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("matches\n%v\nwant\n%v", got, want)
	}
	got = nil
	Search(context.Background(), path, Query{Regexp: regexp.MustCompile(`refused: (middle|oldest)`), Limit: 1}, func(m Match) bool {
		got = append(got, m.Text)
		return true
	})
	if !slices.Equal(got, []string{"connection refused: middle"}) {
		t.Fatalf("regexp with limit 1: %v", got)
	}
}

func TestSearchSkipsCorruptGzip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	writeLogSet(t, path, "needle live\n", []string{"needle old\n", "needle mid\n"}, []bool{true, true})
	all, _ := files(path)
	os.WriteFile(all[1].path, []byte("\x1f\x8bnot really gzip"), 0o640) // the newer backup
	var got []string
	err := Search(context.Background(), path, Query{Substring: "needle"}, func(m Match) bool {
		got = append(got, m.Text)
		return true
	})
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != all[1].path {
		t.Fatalf("error %v, want a FileError for %s", err, all[1].path)
	}
	if !slices.Equal(got, []string{"needle live", "needle old"}) {
		t.Fatalf("matches %v, want the readable files' matches", got)
	}
	// A truncated archive: matches before the damage still count.
	full := filepath.Join(t.TempDir(), "full.gz")
	writeGzip(t, full, linesFrom("needle", 0, 5000))
	b, _ := os.ReadFile(full)
	os.WriteFile(all[2].path, b[:len(b)/2], 0o640)
	got = nil
	err = Search(context.Background(), path, Query{Substring: "needle"}, func(m Match) bool {
		got = append(got, m.Text)
		return true
	})
	if err == nil || len(got) < 3 {
		t.Fatalf("truncated gzip: %d matches, err %v; want some matches and a FileError", len(got), err)
	}
}

func TestSearchStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	writeLogSet(t, path, linesFrom("needle", 0, 100000), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	err := Search(ctx, path, Query{Substring: "needle"}, func(Match) bool {
		seen++
		if seen == 10 {
			cancel()
		}
		return true
	})
	if !errors.Is(err, context.Canceled) || seen > 4096+10 {
		t.Fatalf("after cancel: err %v, %d matches", err, seen)
	}
	seen = 0
	Search(context.Background(), path, Query{Substring: "needle"}, func(Match) bool { seen++; return seen < 7 })
	if seen != 7 {
		t.Fatalf("fn returning false after 7: %d calls", seen)
	}
}

func TestCleanup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.log")
	writeLogSet(t, path, "live\n", []string{"a\n", "b\n"}, []bool{true, false})
	gone := filepath.Join(dir, "removed-agent-2026-01-01T00-00-00.000.log.gz")
	writeGzip(t, gone, "old\n")
	recent := filepath.Join(dir, "other-"+time.Now().UTC().Format(backupTimeLayout)+".log")
	os.WriteFile(recent, nil, 0o640)

	removed, err := Cleanup(path, 24*time.Hour)
	if err != nil || len(removed) != 2 {
		t.Fatalf("Cleanup removed %v (%v), want both old backups", removed, err)
	}
	removed, err = CleanupDir(dir, 24*time.Hour)
	if err != nil || !slices.Equal(removed, []string{gone}) {
		t.Fatalf("CleanupDir removed %v (%v), want only %s", removed, err, gone)
	}
	for _, keep := range []string{path, recent} {
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s was removed", keep)
		}
	}
}

// FuzzTail checks Tail against a naive split for arbitrary content.
func FuzzTail(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), 2)
	f.Add([]byte("\n\n\nx"), 5)
	f.Add([]byte(""), 1)
	f.Fuzz(func(t *testing.T, content []byte, n int) {
		n = n%50 + 1
		if n < 1 {
			n += 50
		}
		path := filepath.Join(t.TempDir(), "f.log")
		os.WriteFile(path, content, 0o640)
		got, err := Tail(path, n)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		if len(content) > 0 {
			want = strings.Split(strings.TrimSuffix(string(content), "\n"), "\n")
			want = want[max(0, len(want)-n):]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Tail(%q, %d) = %q, want %q", content, n, got, want)
		}
	})
}

// FuzzSearchGzip feeds arbitrary bytes as a gzipped backup: Search must
// report or skip it, never panic or hang.
func FuzzSearchGzip(f *testing.F) {
	f.Add([]byte("\x1f\x8b\x08\x00\x00\x00\x00\x00"))
	f.Add([]byte("plain text\n"))
	f.Fuzz(func(t *testing.T, archive []byte) {
		path := filepath.Join(t.TempDir(), "a.log")
		os.WriteFile(path, []byte("x\n"), 0o640)
		os.WriteFile(filepath.Join(filepath.Dir(path), "a-2026-11-01T10-00-00.000.log.gz"), archive, 0o640)
		Search(context.Background(), path, Query{Substring: "x"}, func(Match) bool { return true })
		Tail(path, 3)
	})
}

// A plain backup compressed between listing and opening is read from its
// .gz instead.
func TestReaderFollowsBackupIntoItsArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	r := newRotator(t, Options{Path: path, MaxSizeMB: 1})
	r.Write(numbered(15000, 100))
	r.Close()
	all, _ := files(path)
	if len(all) != 2 || all[1].gzipped {
		t.Fatalf("files %+v, want the live file and one plain backup", all)
	}
	if err := compressBackup(all[1].path); err != nil {
		t.Fatal(err)
	}
	fh, f, err := all[1].open()
	if err != nil || !f.gzipped || f.path != all[1].path+".gz" {
		t.Fatalf("open of the vanished plain backup: %+v, %v", f, err)
	}
	fh.Close()
	lines, err := lastLines(all[1], 3)
	if err != nil || len(lines) != 3 {
		t.Fatalf("lastLines after compression: %q, %v", lines, err)
	}
}

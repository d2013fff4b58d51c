package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"slices"
)

// tailBlockSize is how much Tail reads at a time, backwards.
const tailBlockSize = 64 << 10

// Tail returns the last n lines (oldest first, without newlines) of the
// log file at path, continuing into its newest backups, gzipped or not,
// when the live file holds fewer. Plain files are read backwards in blocks,
// never whole; a gzipped backup must be decompressed from its start, but
// only its last lines are kept. A line longer than a block is still
// returned whole.
func Tail(path string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	all, err := files(path)
	if err != nil {
		return nil, err
	}
	var newestFirst []string
	for _, f := range all {
		need := n - len(newestFirst)
		if need == 0 {
			break
		}
		lines, err := lastLines(f, need)
		if err != nil {
			return nil, fmt.Errorf("tail %s: %w", f.path, err)
		}
		newestFirst = append(newestFirst, lines...)
	}
	slices.Reverse(newestFirst)
	return newestFirst, nil
}

// lastLines returns up to n of the last lines of f, newest first.
func lastLines(f logFile, n int) ([]string, error) {
	fh, f, err := f.open()
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	if f.gzipped {
		return lastLinesGzip(fh, n)
	}
	return lastLinesPlain(fh, n)
}

// lastLinesPlain reads the file backwards.
func lastLinesPlain(f *os.File, n int) ([]string, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var lines []string
	var carry []byte // the start of a line whose beginning lies further back
	block := make([]byte, tailBlockSize)
	end := info.Size()
	first := true
	for end > 0 && len(lines) < n {
		start := max(0, end-tailBlockSize)
		buf := block[:end-start]
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return nil, err
		}
		if first {
			buf = bytes.TrimSuffix(buf, []byte{'\n'}) // the final newline ends, not starts, a line
			first = false
		}
		// Newest line first: everything after the last newline joins carry.
		for len(lines) < n {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				carry = append(append([]byte(nil), buf...), carry...)
				break
			}
			lines = append(lines, string(buf[i+1:])+string(carry))
			carry = carry[:0]
			buf = buf[:i]
		}
		end = start
	}
	if len(lines) < n && info.Size() > 0 { // reached the start: carry is the first line
		lines = append(lines, string(carry))
	}
	return lines, nil
}

// lastLinesGzip decompresses the whole archive, keeping its last n lines.
func lastLinesGzip(f *os.File, n int) ([]string, error) {
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	ring := make([]string, 0, n)
	next := 0
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), maxSearchLine)
	for sc.Scan() {
		if len(ring) < n {
			ring = append(ring, sc.Text())
			continue
		}
		ring[next] = sc.Text()
		next = (next + 1) % n
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	ordered := append(ring[next:], ring[:next]...)
	slices.Reverse(ordered)
	return ordered, nil
}

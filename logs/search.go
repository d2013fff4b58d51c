package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// maxSearchLine caps the length of a line Search and Tail hold in memory;
// a longer line is cut there (and still counted as one line).
const maxSearchLine = 1 << 20

// Query says what Search looks for: a substring or, if Regexp is set, a
// regular expression. Limit stops the search after that many matches; zero
// means no limit.
type Query struct {
	Substring string         // matched as bytes, when Regexp is nil
	Regexp    *regexp.Regexp // takes precedence over Substring
	Limit     int            // most matches to report; 0: all
}

// Match is one matching line.
type Match struct {
	// File is the live file or backup the line is in.
	File string
	// Line is its 1-based line number within File.
	Line int
	// Text is the line without its newline.
	Text string
}

// FileError reports a file Search or Tail could not read (a corrupt or
// truncated .gz, say); the search went on without it.
type FileError struct {
	File string // the live file or backup
	Err  error  // why it could not be read (wholly or from some point on)
}

// Error names the file and the cause.
func (e *FileError) Error() string { return fmt.Sprintf("log file %s: %v", e.File, e.Err) }

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *FileError) Unwrap() error { return e.Err }

// Search calls fn with every line matching q in the log file at path and
// its backups, gzipped or not: the live file first, then the backups newest
// first, each file's lines in order. It stops when fn returns false, when
// q.Limit matches were reported, or when ctx is cancelled (returning
// ctx.Err()). A file that cannot be read, wholly or from some point on, is
// skipped after the matches before the damage; Search then returns the
// *FileErrors joined.
func Search(ctx context.Context, path string, q Query, fn func(Match) bool) error {
	all, err := files(path)
	if err != nil {
		return err
	}
	s := searcher{ctx: ctx, q: q, fn: fn, needle: []byte(q.Substring)}
	var skipped []error
	for _, f := range all {
		err := s.file(f)
		switch {
		case errors.Is(err, errStop):
			return errors.Join(skipped...)
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			skipped = append(skipped, &FileError{File: f.path, Err: err})
		}
	}
	return errors.Join(skipped...)
}

var errStop = errors.New("search stopped")

type searcher struct {
	ctx    context.Context
	q      Query
	fn     func(Match) bool
	needle []byte
	found  int
}

func (s *searcher) file(f logFile) error {
	fh, f, err := f.open()
	if err != nil {
		return err
	}
	defer fh.Close()
	var r io.Reader = fh
	if f.gzipped {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			return err
		}
		r = zr
	}
	return eachLine(bufio.NewReaderSize(r, 64<<10), func(n int, line []byte) error {
		if n%4096 == 0 {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		if !s.matches(line) {
			return nil
		}
		s.found++
		if !s.fn(Match{File: f.path, Line: n, Text: string(line)}) || s.q.Limit > 0 && s.found >= s.q.Limit {
			return errStop
		}
		return nil
	})
}

func (s *searcher) matches(line []byte) bool {
	if s.q.Regexp != nil {
		return s.q.Regexp.Match(line)
	}
	return bytes.Contains(line, s.needle)
}

// eachLine calls fn with each line of r (numbered from 1, without its
// newline, cut at maxSearchLine bytes) until r ends or fn fails.
func eachLine(r *bufio.Reader, fn func(int, []byte) error) error {
	var long []byte // a line longer than the reader's buffer, assembled
	for n := 1; ; {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) < maxSearchLine {
				long = append(long, chunk[:min(len(chunk), maxSearchLine-len(long))]...)
			}
			continue
		}
		line := chunk
		if long != nil {
			if len(long) < maxSearchLine {
				long = append(long, chunk[:min(len(chunk), maxSearchLine-len(long))]...)
			}
			line = long
		}
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(line) > 0 || err == nil {
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
			n++
		}
		long = nil
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

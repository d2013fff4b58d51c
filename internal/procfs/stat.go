// Package procfs reads the few fields of /proc/PID/stat that tend needs,
// with one read and no allocation beyond the file's bytes.
package procfs

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// Stat is the part of /proc/PID/stat tend uses (proc(5) field numbers).
type Stat struct {
	State      byte   // 3: R, S, D, Z, T, X ...
	PPID       int    // 4
	PGRP       int    // 5
	UTime      uint64 // 14: user CPU, clock ticks
	STime      uint64 // 15: system CPU, clock ticks
	StartTicks uint64 // 22: start time after boot, clock ticks
	RSSPages   int64  // 24: resident set, pages
}

// Live reports whether the process is neither a zombie nor dead.
func (s Stat) Live() bool { return s.State != 'Z' && s.State != 'X' }

var errMalformed = errors.New("malformed /proc stat")

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	var buf [512]byte
	return ReadStatBuf(pid, buf[:])
}

// ReadStatBuf reads /proc/PID/stat using buf (512 bytes hold any stat
// line up to field 24 but for a command name of absurd length), so that a
// sweep over many processes allocates little.
func ReadStatBuf(pid int, buf []byte) (Stat, error) {
	var name [32]byte
	path := strconv.AppendInt(append(name[:0], "/proc/"...), int64(pid), 10)
	f, err := os.Open(string(append(path, "/stat"...)))
	if err != nil {
		return Stat{}, err
	}
	defer f.Close()
	n, err := f.Read(buf)
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(buf[:n])
}

// ParseStat parses the content of a /proc/PID/stat file. The command name
// (field 2) may hold spaces and parentheses, so parsing starts after the
// last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) || b[i+1] != ' ' {
		return Stat{}, errMalformed
	}
	rest := b[i+2:]
	var st Stat
	for field := 3; len(rest) > 0 && field <= 24; field++ {
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		tok := bytes.TrimSpace(rest[:end])
		rest = rest[min(end+1, len(rest)):]
		var err error
		switch field {
		case 3:
			if len(tok) != 1 || !isLetter(tok[0]) {
				return Stat{}, errMalformed
			}
			st.State = tok[0]
		case 4:
			st.PPID, err = atoi(tok)
		case 5:
			st.PGRP, err = atoi(tok)
		case 14:
			st.UTime, err = parseUint(tok)
		case 15:
			st.STime, err = parseUint(tok)
		case 22:
			st.StartTicks, err = parseUint(tok)
		case 24:
			var rss int
			rss, err = atoi(tok)
			st.RSSPages = int64(rss)
			if err == nil {
				return st, nil
			}
		}
		if err != nil {
			return Stat{}, errMalformed
		}
	}
	return Stat{}, errMalformed
}

func isLetter(c byte) bool { return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' }

// parseUint parses a decimal without converting to a string.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, errMalformed
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errMalformed
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, errMalformed
		}
		n = n*10 + d
	}
	return n, nil
}

// atoi parses a possibly negative decimal int.
func atoi(b []byte) (int, error) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n, err := parseUint(b)
	if err != nil || n > 1<<62 {
		return 0, errMalformed
	}
	if neg {
		return -int(n), nil
	}
	return int(n), nil
}

// Find returns the processes whose stat match accepts, in /proc order. A
// process that ends during the scan is skipped; a scan that cannot open
// /proc, or a stat file for want of descriptors, fails, since it cannot
// tell what it did not see.
func Find(match func(pid int, st Stat) bool) ([]int, error) {
	pids, err := PIDs()
	if err != nil {
		return nil, err
	}
	var found []int
	var buf [512]byte
	for _, pid := range pids {
		st, err := ReadStatBuf(pid, buf[:])
		switch {
		case err == nil && match(pid, st):
			found = append(found, pid)
		case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
			return nil, err
		}
	}
	return found, nil
}

// PIDs lists the numeric entries of /proc.
func PIDs() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

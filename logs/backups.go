package logs

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// backupTimeLayout is the timestamp lumberjack puts in backup names:
// <name>-2006-01-02T15-04-05.000<ext>[.gz], the moment of rotation.
const backupTimeLayout = "2006-01-02T15-04-05.000"

// logFile is the live file or one backup of it.
type logFile struct {
	path    string
	gzipped bool
	rotated time.Time // zero for the live file
}

// files returns the live file (if it exists) and its backups, newest
// first. While lumberjack compresses a backup, both x.log and a partial
// x.log.gz exist: the plain one is complete, so the .gz is skipped.
func files(path string) ([]logFile, error) {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	var out []logFile
	plain := map[time.Time]bool{}
	for _, e := range entries {
		if name := e.Name(); name == base {
			continue
		} else if f, ok := parseBackup(name, prefix, ext); ok && e.Type().IsRegular() {
			f.path = filepath.Join(dir, name)
			out = append(out, f)
			if !f.gzipped {
				plain[f.rotated] = true
			}
		}
	}
	out = slices.DeleteFunc(out, func(f logFile) bool { return f.gzipped && plain[f.rotated] })
	slices.SortFunc(out, func(a, b logFile) int { return b.rotated.Compare(a.rotated) })
	if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
		out = slices.Insert(out, 0, logFile{path: path})
	}
	return out, nil
}

// open opens the file. A plain backup that is gone since it was listed
// was compressed meanwhile: its .gz is opened instead, and the returned
// logFile says so.
func (f logFile) open() (*os.File, logFile, error) {
	fh, err := os.Open(f.path)
	if errors.Is(err, fs.ErrNotExist) && !f.rotated.IsZero() && !f.gzipped {
		f.path, f.gzipped = f.path+".gz", true
		fh, err = os.Open(f.path)
	}
	return fh, f, err
}

// parseBackup recognises prefix + timestamp + ext [+ ".gz"].
func parseBackup(name, prefix, ext string) (logFile, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return logFile{}, false
	}
	f := logFile{}
	if trimmed, gz := strings.CutSuffix(rest, ".gz"); gz {
		rest, f.gzipped = trimmed, true
	}
	stamp, ok := strings.CutSuffix(rest, ext)
	if !ok || len(stamp) != len(backupTimeLayout) {
		return logFile{}, false
	}
	t, err := time.Parse(backupTimeLayout, stamp)
	if err != nil {
		return logFile{}, false
	}
	f.rotated = t
	return f, true
}

// Cleanup removes the backups of the log file at path whose rotation time
// (from their name) is older than maxAge, and returns what it removed.
// lumberjack's MaxAgeDays does this only when it rotates; Cleanup serves
// logs that stopped rotating. The live file is never touched.
func Cleanup(path string, maxAge time.Duration) ([]string, error) {
	all, err := files(path)
	if err != nil {
		return nil, err
	}
	return removeOlder(all, maxAge)
}

// CleanupDir removes, from dir, every rotated backup of any log (a name
// ending in -<timestamp><ext>[.gz]) older than maxAge: the archives of
// agents that no longer exist. Live files are never touched.
func CleanupDir(dir string, maxAge time.Duration) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []logFile
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ".gz")
		ext := filepath.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		if len(stem) <= len(backupTimeLayout) {
			continue
		}
		prefix := stem[:len(stem)-len(backupTimeLayout)]
		if f, ok := parseBackup(e.Name(), prefix, ext); ok && strings.HasSuffix(prefix, "-") {
			f.path = filepath.Join(dir, e.Name())
			found = append(found, f)
		}
	}
	return removeOlder(found, maxAge)
}

func removeOlder(all []logFile, maxAge time.Duration) ([]string, error) {
	cutoff := time.Now().Add(-maxAge)
	var removed []string
	var firstErr error
	for _, f := range all {
		if f.rotated.IsZero() || !f.rotated.Before(cutoff) {
			continue
		}
		if err := os.Remove(f.path); err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		removed = append(removed, f.path)
	}
	return removed, firstErr
}

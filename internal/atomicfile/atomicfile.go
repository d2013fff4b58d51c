// Package atomicfile replaces files so that a crash at any moment leaves
// either the old content or the new, never a torn mix.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Write replaces path with data: it writes a temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory, so
// the rename itself is durable. An existing file keeps its mode and owner;
// a new one gets perm.
func Write(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	mode, uid, gid := perm, -1, -1
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(dir, tempPrefix(path)+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("keep owner %d:%d of %s: %w", uid, gid, path, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) { // some filesystems cannot sync a directory
		return err
	}
	return nil
}

// tempPrefix starts the names of Write's temporary files for path; the
// writer's PID and a random part follow: .NAME.tmp-PID-RANDOM.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// RemoveStale removes the temporary files that Writes to path left behind
// when their process died before the rename: those whose PID names no
// live process (or that carry no PID). A Write under way in a live
// process, this one included, keeps its file.
func RemoveStale(path string) error {
	prefix := filepath.Join(filepath.Dir(path), tempPrefix(path))
	found, err := filepath.Glob(prefix + "*")
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range found {
		pid, _, _ := strings.Cut(strings.TrimPrefix(f, prefix), "-")
		if n, err := strconv.Atoi(pid); err == nil && alive(n) {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// alive reports whether a process with this PID exists (possibly another
// user's, possibly one that reused the PID: then the file waits for a
// later sweep).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

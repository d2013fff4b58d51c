package logs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The mill compresses and prunes backups after a rotation, on a goroutine
// the Rotator owns and Close waits for, so that when Close returns every
// backup is in its final form and readers find what they listed.
// lumberjack has its own mill, but Close cannot wait for it; lumberjack is
// therefore left only to append (no rotation, compression or pruning of
// its own), and its idle mill goroutine is ended by stopMill.

// wakeMill makes the mill run a pass, starting its goroutine if none runs;
// r.mu must be held.
func (r *Rotator) wakeMill() {
	if !r.opts.Compress && r.opts.MaxBackups == 0 && r.opts.MaxAgeDays == 0 {
		return
	}
	r.millPending = true
	if r.millRunning {
		return
	}
	r.millRunning = true
	r.millDone.Add(1)
	go r.runMill()
}

// runMill makes passes while rotations asked for them, then ends.
func (r *Rotator) runMill() {
	defer r.millDone.Done()
	for {
		r.mu.Lock()
		if !r.millPending {
			r.millRunning = false
			r.mu.Unlock()
			return
		}
		r.millPending = false
		r.mu.Unlock()
		if err := r.millPass(time.Now()); err != nil {
			r.mu.Lock()
			r.failed(err, "cannot compress or prune log backups")
			r.mu.Unlock()
		}
	}
}

// millPass removes the backups beyond MaxBackups (newest kept) or older
// than MaxAgeDays, as lumberjack would, and gzips the remaining plain ones
// when Compress is set.
func (r *Rotator) millPass(now time.Time) error {
	all, err := files(r.opts.Path)
	if err != nil {
		return err
	}
	backups := all[:0]
	for _, f := range all {
		if !f.rotated.IsZero() {
			backups = append(backups, f)
		}
	}
	keep := backups
	if n := r.opts.MaxBackups; n > 0 && len(keep) > n {
		keep = keep[:n]
	}
	if days := r.opts.MaxAgeDays; days > 0 {
		cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
		for i, f := range keep {
			if f.rotated.Before(cutoff) {
				keep = keep[:i]
				break
			}
		}
	}
	var errs []error
	for _, f := range backups[len(keep):] {
		errs = append(errs, removeBackup(f))
	}
	if r.opts.Compress {
		for _, f := range keep {
			if !f.gzipped {
				errs = append(errs, compressBackup(f.path))
			}
		}
	}
	return errors.Join(errs...)
}

// removeBackup removes a backup, and the .gz of a plain one: a crash
// during an earlier compression may have left both.
func removeBackup(f logFile) error {
	err := os.Remove(f.path)
	if !f.gzipped {
		if gzErr := os.Remove(f.path + ".gz"); !errors.Is(gzErr, fs.ErrNotExist) {
			err = errors.Join(err, gzErr)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// compressBackup replaces path by path.gz with the same mode and owner.
// The archive is written under a temporary name and renamed into place
// before the plain file goes, so a reader sees one complete form or the
// other (and retries the .gz when the plain one vanished meanwhile).
func compressBackup(path string) (err error) {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".gz-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := gzip.NewWriter(tmp)
	if _, err = io.Copy(zw, src); err != nil {
		return fmt.Errorf("compress %s: %w", path, err)
	}
	if err = zw.Close(); err != nil {
		return fmt.Errorf("compress %s: %w", path, err)
	}
	if err = tmp.Chmod(info.Mode().Perm()); err != nil {
		return err
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
		if err = tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path+".gz"); err != nil {
		return err
	}
	return os.Remove(path)
}

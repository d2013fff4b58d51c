package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Rotator writes to a log file that rotates by size and, optionally, by
// time. It is safe for concurrent use; each Write lands whole in one file.
type Rotator struct {
	opts  Options
	lj    *lumberjack.Logger
	limit int64 // MaxSizeMB in bytes

	mu         sync.Mutex
	size       int64  // bytes in the live file, by our count
	inode      uint64 // of the live file we write to
	lastCheck  time.Time
	dirty      bool // written since the last rotation
	torn       bool // a failed write left the live file ending mid-line
	lastRotate time.Time
	closed     bool
	stats      Stats
	lastLogged time.Time
	unlogged   int // failures since the last logged one
	schedule   *time.Timer
	streams    []*Stream

	millPending bool           // a rotation asked for a pass the mill has not begun
	millRunning bool           // the mill goroutine exists
	millDone    sync.WaitGroup // Close waits for the mill
}

// Stats counts what a Rotator did.
type Stats struct {
	// BytesWritten reached the file.
	BytesWritten int64
	// BytesDropped were lost to write errors (a full disk, say).
	BytesDropped int64
	// LinesDropped counts the lines of those bytes: lines lost whole or
	// cut short (a cut line's fragment stays in the file).
	LinesDropped int64
	// Errors counts failed writes and rotations.
	Errors int64
	// Rotations counts completed rotations.
	Rotations int64
	// LastError is the latest failure, nil if none.
	LastError error
}

// errorLogEvery is how often a persisting write failure is logged.
const errorLogEvery = 10 * time.Second

// ErrClosed is returned by writes to a closed Rotator.
var ErrClosed = errors.New("logs: rotator closed")

// New validates opts, creates the log directory (DirMode) and the file
// (FileMode) if missing, and returns the Rotator. Errors name the option or
// the path and the cause (a directory that cannot be created or written).
func New(opts Options) (*Rotator, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("log file %s: %w", opts.Path, err)
	}
	opts.Path = path
	if err := os.MkdirAll(filepath.Dir(path), fs.FileMode(opts.DirMode)); err != nil {
		return nil, fmt.Errorf("log directory %s: %w", filepath.Dir(path), err)
	}
	// lumberjack would create the file 0600: create it with our mode.
	if err := createFile(path, fs.FileMode(opts.FileMode)); err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	r := &Rotator{
		opts:  opts,
		limit: int64(opts.MaxSizeMB) << 20,
		size:  info.Size(),
		inode: inodeOf(info),
		// lumberjack only appends: the Rotator rotates (MaxSize is beyond
		// reach), and its mill compresses and prunes.
		lj: &lumberjack.Logger{Filename: path, MaxSize: math.MaxInt32},
	}
	r.armSchedule(time.Now())
	return r, nil
}

// Path returns the live file's absolute path.
func (r *Rotator) Path() string { return r.opts.Path }

// Write appends p to the file. Content larger than the size limit is split,
// at the last newline that fits where there is one. Write rotates first when
// p would overflow the live file. It never fails because the disk does: the
// bytes are counted as dropped, the error is logged (at most every 10s)
// and kept in Stats, and the next Write tries again; a write the disk cut
// short leaves a fragment of a line, which the next write that gets
// through ends with a newline first. It returns ErrClosed
// after Close.
func (r *Rotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, ErrClosed
	}
	r.reopenIfReplaced()
	for rest := p; len(rest) > 0; {
		chunk := rest
		if int64(len(chunk)) > r.limit {
			chunk = splitAt(rest, r.limit)
		}
		rest = rest[len(chunk):]
		if r.size > 0 && r.size+int64(len(chunk)) > r.limit {
			r.rotateLocked()
		}
		buf, lead := r.endTornLine(chunk)
		n, err := r.lj.Write(buf)
		r.size += int64(n)
		r.stats.BytesWritten += int64(n)
		if n > 0 {
			r.dirty, r.torn = true, false // a newline that ends a fragment goes first
		}
		if err != nil {
			lost := chunk[max(n-lead, 0):]
			r.stats.BytesDropped += int64(len(lost))
			r.stats.LinesDropped += int64(bytes.Count(lost, []byte{'\n'}))
			r.torn = r.torn || n > 0 && buf[n-1] != '\n'
			r.failed(err, "cannot write log file")
		}
	}
	return len(p), nil
}

// endTornLine puts the newline that ends the fragment a cut-short write
// left in front of chunk, so that the line after a drop starts a line of
// its own. It goes in the same write as the chunk: written apart, a
// newline that failed on a full disk and a chunk that fit a moment later
// glued the line to the fragment. lead is 1 when it added the newline.
func (r *Rotator) endTornLine(chunk []byte) (buf []byte, lead int) {
	if !r.torn {
		return chunk, 0
	}
	return append([]byte{'\n'}, chunk...), 1
}

// splitAt returns the longest prefix of p no longer than limit that ends
// with a newline, or limit bytes if no newline fits.
func splitAt(p []byte, limit int64) []byte {
	head := p[:limit]
	if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
		return head[:i+1]
	}
	return head
}

// Rotate closes the live file, renames it to a timestamped backup and
// starts a new one, even if nothing was written.
func (r *Rotator) Rotate() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return r.rotateLocked()
}

// rotateLocked rotates, at least a millisecond after the previous
// rotation: backups are named by the millisecond, and a second rotation
// within one would overwrite the first backup.
//
// It renames the file itself rather than through lumberjack's Rotate,
// which recreates the live file with O_TRUNC: on ext4 that marks the new
// file for allocation on close, so every rotation's close flushed the
// whole file synchronously. The new live file is created here (with
// FileMode, without truncation), the zero-length write reopens it in
// lumberjack, and the mill compresses and prunes the backups.
func (r *Rotator) rotateLocked() error {
	if wait := time.Millisecond - time.Since(r.lastRotate); wait > 0 {
		time.Sleep(wait)
	}
	now := time.Now()
	r.lastRotate = now
	err := r.lj.Close()
	old, statErr := os.Stat(r.opts.Path)
	if err == nil {
		err = os.Rename(r.opts.Path, r.backupName(now))
	}
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		err = createFile(r.opts.Path, fs.FileMode(r.opts.FileMode))
	}
	if err == nil && statErr == nil {
		err = keepOwner(r.opts.Path, old)
	}
	if err == nil {
		_, err = r.lj.Write(nil)
	}
	if err != nil {
		r.failed(err, "cannot rotate log file")
		return err
	}
	r.size, r.dirty, r.torn = 0, false, false
	r.inode = inodeAt(r.opts.Path)
	r.stats.Rotations++
	r.wakeMill()
	return nil
}

// replacedCheckEvery is how often a Write looks whether the live file was
// deleted or replaced underneath (by logrotate, an operator's rm).
const replacedCheckEvery = time.Second

// reopenIfReplaced starts a new live file when the one lumberjack writes to
// is no longer at Path: lumberjack would go on writing into the unlinked
// file, where nobody sees the lines.
func (r *Rotator) reopenIfReplaced() {
	now := time.Now()
	if now.Sub(r.lastCheck) < replacedCheckEvery {
		return
	}
	r.lastCheck = now
	if inodeAt(r.opts.Path) == r.inode {
		return
	}
	err := r.lj.Close()
	if err == nil {
		err = createFile(r.opts.Path, fs.FileMode(r.opts.FileMode))
	}
	if err != nil {
		r.failed(err, "cannot recreate log file removed underneath")
		return
	}
	r.opts.Logger.Info("log file was removed or replaced underneath; writing a new one", "path", r.opts.Path)
	r.size, r.inode, r.torn = 0, inodeAt(r.opts.Path), false
}

func inodeOf(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// inodeAt returns the inode at path, or 0 when nothing is there.
func inodeAt(path string) uint64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return inodeOf(info)
}

// backupName is lumberjack's name for a backup rotated at t, so that its
// retention and compression recognise it: <stem>-<timestamp><ext>.
func (r *Rotator) backupName(t time.Time) string {
	if !r.opts.LocalTime {
		t = t.UTC()
	}
	ext := filepath.Ext(r.opts.Path)
	return strings.TrimSuffix(r.opts.Path, ext) + "-" + t.Format(backupTimeLayout) + ext
}

// keepOwner gives path the owner of the file it replaces, as lumberjack
// does, when that differs from ours (a root host writing a log another
// user reads).
func keepOwner(path string, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	return os.Chown(path, int(st.Uid), int(st.Gid))
}

// createFile creates path with mode if it does not exist.
func createFile(path string, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return err
	}
	return f.Close()
}

// failed records err and logs it unless another failure was logged less
// than errorLogEvery ago.
func (r *Rotator) failed(err error, msg string) {
	r.stats.Errors++
	r.stats.LastError = err
	now := time.Now()
	if !r.lastLogged.IsZero() && now.Sub(r.lastLogged) < errorLogEvery {
		r.unlogged++
		return
	}
	r.opts.Logger.Error(err, msg, "path", r.opts.Path, "suppressed", r.unlogged,
		"droppedBytes", r.stats.BytesDropped, "diskFull", errors.Is(err, syscall.ENOSPC))
	r.lastLogged, r.unlogged = now, 0
}

// Stats returns the counters so far.
func (r *Rotator) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close flushes the Streams' partial lines, stops scheduled rotation,
// closes the file, and returns once the compression and pruning of
// backups are done, with no goroutine of the Rotator's left. Later writes
// return ErrClosed. Close is idempotent.
func (r *Rotator) Close() error {
	r.mu.Lock()
	streams := r.streams
	r.mu.Unlock()
	for _, s := range streams {
		s.Flush()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	if r.schedule != nil {
		r.schedule.Stop()
	}
	err := r.lj.Close()
	stopMill(r.lj)
	r.mu.Unlock()
	r.millDone.Wait()
	return err
}

package reload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Change is a watched file's new content.
type Change struct {
	// Path is the watched file, absolute.
	Path string
	// Data is the new content; nil when the file was removed.
	Data []byte
	// Hash is the hex SHA-256 of Data; empty when removed.
	Hash string
	// Removed is true when the file no longer exists.
	Removed bool
}

// Options tunes a Watcher. Zero values mean the defaults.
type Options struct {
	// Debounce is the quiet time after the last event before the file is
	// read. Default 200ms.
	Debounce time.Duration
	// Rescan is the period of a full re-read of every file, for
	// filesystems that do not report changes. Default 60s; negative: never.
	Rescan time.Duration
	// Poll is how often files in directories that cannot be watched (not
	// existing yet, or the inotify limits reached) are read. Default 2s.
	Poll time.Duration
	// Logger receives warnings (fallback to polling, inotify errors).
	Logger logr.Logger
}

// Watcher calls the host's function with every content change of the
// files added to it. One fsnotify watcher serves all directories.
type Watcher struct {
	opts Options
	fn   func(context.Context, Change)
	fsw  *fsnotify.Watcher // owned by Run; nil: everything is polled
	// noInotify makes Run poll everything, as when inotify is exhausted.
	noInotify bool
	kick      chan struct{}
	due       chan string
	closed    chan struct{}

	mu    sync.Mutex
	files map[string]*watchedFile
	dirs  map[string]uint64 // directory -> inode watched by inotify; 0: not watched

	deliveries sync.WaitGroup
	overflows  atomic.Int64 // inotify queue overflows seen
}

type watchedFile struct {
	path, dir string
	hash      string // of the content last seen; "" when absent
	debounce  *time.Timer

	mu      sync.Mutex // guards pending and running
	pending *Change
	running bool
}

// NewWatcher returns a Watcher that calls fn with changes once Run runs.
// It holds no resources until Run.
func NewWatcher(opts Options, fn func(ctx context.Context, c Change)) (*Watcher, error) {
	switch {
	case fn == nil:
		return nil, errors.New("reload: NewWatcher needs a function to call")
	case opts.Debounce < 0 || opts.Poll < 0:
		return nil, errors.New("reload: negative debounce or poll interval")
	}
	if opts.Debounce == 0 {
		opts.Debounce = 200 * time.Millisecond
	}
	if opts.Rescan == 0 {
		opts.Rescan = time.Minute
	}
	if opts.Poll == 0 {
		opts.Poll = 2 * time.Second
	}
	return &Watcher{opts: opts, fn: fn, kick: make(chan struct{}, 1), due: make(chan string, 64),
		closed: make(chan struct{}), files: map[string]*watchedFile{}, dirs: map[string]uint64{}}, nil
}

// Add watches the file at path (which need not exist yet). Its current
// content is the baseline: only later changes are reported. Add may be
// called before or during Run.
func (w *Watcher) Add(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	f := &watchedFile{path: abs, dir: filepath.Dir(abs)}
	if data, err := os.ReadFile(abs); err == nil {
		f.hash = hashOf(data)
	}
	w.mu.Lock()
	if _, dup := w.files[abs]; !dup {
		w.files[abs] = f
		if _, known := w.dirs[f.dir]; !known {
			w.dirs[f.dir] = 0
		}
	}
	w.mu.Unlock()
	select { // Run watches the new directory
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// Remove stops watching the file at path; its directory's watch goes once
// no other watched file needs it. A change already being delivered
// finishes.
func (w *Watcher) Remove(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("unwatch %s: %w", path, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.files[abs]
	if !ok {
		return nil
	}
	if f.debounce != nil {
		f.debounce.Stop()
	}
	delete(w.files, abs)
	for _, other := range w.files {
		if other.dir == f.dir {
			return nil
		}
	}
	if w.dirs[f.dir] != 0 && w.fsw != nil {
		w.fsw.Remove(f.dir) //nolint:errcheck // inotify may have dropped it already
	}
	delete(w.dirs, f.dir)
	return nil
}

func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Run watches until ctx ends; then it stops every timer, waits for the
// host function calls under way (their ctx is cancelled) and returns nil.
// If inotify is unavailable (the per-user instance limit), every file is
// polled and a warning logged. Run may be called once.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.deliveries.Wait()
	defer close(w.closed)
	defer w.stopTimers()
	if !w.noInotify {
		fsw, err := fsnotify.NewWatcher()
		if err != nil {
			w.opts.Logger.Error(err, "inotify unavailable; polling config files instead", "poll", w.opts.Poll.String())
		} else {
			w.mu.Lock()
			w.fsw = fsw
			w.mu.Unlock()
			defer fsw.Close()
		}
	}
	w.watchDirs()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fsw != nil {
		events, errs = w.fsw.Events, w.fsw.Errors
	}
	rescan := newTicker(w.opts.Rescan)
	defer rescan.Stop()
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.onEvent(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.overflows.Add(1)
				w.opts.Logger.Info("inotify queue overflowed; rescanning every watched file")
				w.scheduleAll(func(*watchedFile) bool { return true })
			} else {
				w.opts.Logger.Error(err, "inotify error")
			}
		case path := <-w.due:
			w.check(ctx, path)
		case <-rescan.C:
			w.watchDirs()
			w.scheduleAll(func(*watchedFile) bool { return true })
		case <-poll.C:
			w.forgetReplacedDirs()
			w.watchDirs()
			unwatched := w.unwatchedDirs()
			w.scheduleAll(func(f *watchedFile) bool { return unwatched[f.dir] })
		case <-w.kick:
			w.watchDirs()
		}
	}
}

// newTicker returns a ticker for d, or one that never fires when d < 0.
func newTicker(d time.Duration) *time.Ticker {
	if d < 0 {
		t := time.NewTicker(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTicker(d)
}

func (w *Watcher) unwatchedDirs() map[string]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]bool{}
	for dir, ino := range w.dirs {
		if ino == 0 {
			out[dir] = true
		}
	}
	return out
}

// forgetReplacedDirs drops the watch of every directory that is gone or
// was replaced by another one under the same path (inotify watches the
// old inode), so that watchDirs watches the new one.
func (w *Watcher) forgetReplacedDirs() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for dir, ino := range w.dirs {
		if ino != 0 && inodeOf(dir) != ino {
			w.dirs[dir] = 0
			if w.fsw != nil {
				w.fsw.Remove(dir) //nolint:errcheck // inotify may have dropped it already
			}
		}
	}
}

// inodeOf returns the inode of path, or 0 if it cannot be read.
func inodeOf(path string) uint64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// watchDirs adds an inotify watch to every directory that lacks one. A
// directory that just became watchable may have changed unseen: its files
// are read again.
func (w *Watcher) watchDirs() {
	if w.fsw == nil {
		return
	}
	w.mu.Lock()
	var added []string
	for dir, ino := range w.dirs {
		if ino != 0 {
			continue
		}
		err := w.fsw.Add(dir)
		switch {
		case err == nil:
			w.dirs[dir] = inodeOf(dir)
			added = append(added, dir)
		case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EMFILE):
			w.opts.Logger.Error(err, "inotify watch limit reached; polling this directory", "dir", dir)
		case !errors.Is(err, fs.ErrNotExist):
			w.opts.Logger.Error(err, "cannot watch directory; polling it", "dir", dir)
		}
	}
	w.mu.Unlock()
	for _, dir := range added {
		w.scheduleAll(func(f *watchedFile) bool { return f.dir == dir })
	}
}

// onEvent schedules a read of every file an event may concern: the file by
// name, or any file of a directory whose ..data link was swapped
// (Kubernetes ConfigMap volumes, where the file's own name never shows).
func (w *Watcher) onEvent(ev fsnotify.Event) {
	w.mu.Lock()
	if _, isDir := w.dirs[ev.Name]; isDir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		w.dirs[ev.Name] = 0 // inotify dropped the watch; poll until it is back
		w.mu.Unlock()
		w.scheduleAll(func(f *watchedFile) bool { return f.dir == ev.Name })
		return
	}
	w.mu.Unlock()
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	w.scheduleAll(func(f *watchedFile) bool { return f.path == ev.Name || (f.dir == dir && base == "..data") })
}

// scheduleAll (re)starts the debounce timer of every file match selects;
// match runs under w.mu.
func (w *Watcher) scheduleAll(match func(*watchedFile) bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.files {
		if !match(f) {
			continue
		}
		if f.debounce != nil {
			f.debounce.Reset(w.opts.Debounce)
			continue
		}
		path := f.path
		f.debounce = time.AfterFunc(w.opts.Debounce, func() {
			select {
			case w.due <- path:
			case <-w.closed:
			}
		})
	}
}

func (w *Watcher) stopTimers() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.files {
		if f.debounce != nil {
			f.debounce.Stop()
		}
	}
}

// check reads the file after its quiet time and delivers a change if the
// content hash moved.
func (w *Watcher) check(ctx context.Context, path string) {
	w.mu.Lock()
	f := w.files[path]
	w.mu.Unlock()
	if f == nil {
		return
	}
	data, err := os.ReadFile(path)
	var c Change
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c = Change{Path: path, Removed: true}
	case err != nil:
		w.opts.Logger.Error(err, "cannot read watched file", "path", path)
		return
	default:
		c = Change{Path: path, Data: data, Hash: hashOf(data)}
	}
	if c.Hash == f.hash {
		return // a touch, an identical rewrite, or still absent
	}
	f.hash = c.Hash
	w.deliver(ctx, f, c)
}

// deliver hands c to the host, one call at a time per file; a change that
// arrives while the host is busy replaces any older pending one, so the
// host always ends on the latest content.
func (w *Watcher) deliver(ctx context.Context, f *watchedFile, c Change) {
	f.mu.Lock()
	f.pending = &c
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if !start {
		return
	}
	w.deliveries.Add(1)
	go func() {
		defer w.deliveries.Done()
		for {
			f.mu.Lock()
			next := f.pending
			f.pending = nil
			if next == nil || ctx.Err() != nil {
				f.running = false
				f.mu.Unlock()
				return
			}
			f.mu.Unlock()
			w.fn(ctx, *next)
		}
	}()
}

package cgroup

import (
	"sync"

	"github.com/fsnotify/fsnotify"
)

// emptyWatcher is one inotify instance for all of a parent's leaves, alive
// only while some leaf is being waited on: a thousand agents cost one
// instance (of the 128 a user has by default) and a watch per leaf being
// emptied, not a descriptor each.
type emptyWatcher struct {
	mu      sync.Mutex
	w       *fsnotify.Watcher
	waiting map[string]chan struct{} // cgroup.events file → woken on change
}

// add watches file, returning a channel that receives after each change
// and the function that ends the watch. Without inotify the channel never
// receives, and the caller's slow re-read is all that is left.
func (e *emptyWatcher) add(file string) (<-chan struct{}, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := make(chan struct{}, 1)
	if e.w == nil {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return ch, func() {}
		}
		e.w, e.waiting = w, map[string]chan struct{}{}
		go e.forward(w)
	}
	if err := e.w.Add(file); err != nil {
		e.closeIfIdle()
		return ch, func() {}
	}
	e.waiting[file] = ch
	return ch, func() { e.remove(file) }
}

func (e *emptyWatcher) remove(file string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.waiting, file)
	e.w.Remove(file) //nolint:errcheck // the leaf may be gone, and the watch with it
	e.closeIfIdle()
}

// closeIfIdle closes the instance when nothing waits; under mu.
func (e *emptyWatcher) closeIfIdle() {
	if len(e.waiting) == 0 {
		e.w.Close()
		e.w = nil
	}
}

// forward wakes the waiter of each file that changed, until w is closed.
func (e *emptyWatcher) forward(w *fsnotify.Watcher) {
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			e.mu.Lock()
			if ch := e.waiting[ev.Name]; ch != nil {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
			e.mu.Unlock()
		case _, ok := <-w.Errors:
			if !ok {
				return
			}
		}
	}
}

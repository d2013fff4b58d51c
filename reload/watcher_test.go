package reload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector runs a Watcher and records the changes it reports.
type collector struct {
	mu      sync.Mutex
	changes []Change
	notify  chan struct{}
}

func watch(t *testing.T, opts Options, configure func(*Watcher), paths ...string) *collector {
	t.Helper()
	c := &collector{notify: make(chan struct{}, 100)}
	if opts.Debounce == 0 {
		opts.Debounce = 50 * time.Millisecond
	}
	w, err := NewWatcher(opts, func(_ context.Context, ch Change) {
		c.mu.Lock()
		c.changes = append(c.changes, ch)
		c.mu.Unlock()
		c.notify <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(w)
	}
	for _, p := range paths {
		if err := w.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(50 * time.Millisecond) // let Run add its watches
	return c
}

// await waits until a change with content want is reported. A write in
// place (truncate, then write) may be seen half done when the machine
// stalls the writer longer than the debounce; the final content must
// follow, and nothing after it.
func (c *collector) await(t *testing.T, want string) Change {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-c.notify:
			c.mu.Lock()
			got := c.changes[len(c.changes)-1]
			c.mu.Unlock()
			if string(got.Data) == want && !got.Removed {
				return got
			}
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("content %q never reported; got %d changes", want, len(c.changes))
		}
	}
}

// next waits for the next change, or fails.
func (c *collector) next(t *testing.T) Change {
	t.Helper()
	select {
	case <-c.notify:
	case <-time.After(5 * time.Second):
		t.Fatal("no change reported within 5s")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changes[len(c.changes)-1]
}

// none asserts nothing is reported for a while.
func (c *collector) none(t *testing.T, what string) {
	t.Helper()
	select {
	case <-c.notify:
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("%s reported a change: %+v", what, c.changes[len(c.changes)-1])
	case <-time.After(300 * time.Millisecond):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every way a config file gets replaced is seen, and reported once with
// the final content.
func TestWatcherSeesEveryReplacementStyle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	write(t, path, "v: 0\n")
	c := watch(t, Options{}, nil, path)

	styles := []struct {
		name    string
		replace func(content string)
	}{
		{"in-place write", func(s string) { write(t, path, s) }},
		{"cp over", func(s string) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			f.WriteString(s[:2])
			time.Sleep(5 * time.Millisecond)
			f.WriteString(s[2:])
			f.Close()
		}},
		{"atomic rename", func(s string) {
			tmp := filepath.Join(dir, ".agent.yaml.tmp")
			write(t, tmp, s)
			os.Rename(tmp, path)
		}},
		{"vim backup and rewrite", func(s string) {
			os.Rename(path, path+"~")
			write(t, path, s)
			os.Remove(path + "~")
		}},
		{"delete then create", func(s string) {
			os.Remove(path)
			time.Sleep(10 * time.Millisecond)
			write(t, path, s)
		}},
	}
	for i, st := range styles {
		content := fmt.Sprintf("v: %d\n", i+1)
		st.replace(content)
		if got := c.await(t, content); got.Path != path || got.Hash != hashOf([]byte(content)) {
			t.Fatalf("%s: reported %+v", st.name, got)
		}
		c.none(t, st.name+" (a second report)")
	}
}

func TestWatcherFiltersTouchAndIdenticalRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	write(t, path, "same\n")
	other := filepath.Join(filepath.Dir(path), "unrelated.yaml")
	c := watch(t, Options{}, nil, path)
	now := time.Now()
	os.Chtimes(path, now, now)
	c.none(t, "touch")
	write(t, path, "same\n")
	c.none(t, "identical rewrite")
	write(t, other, "x")
	c.none(t, "another file in the directory")
	for i := range 20 { // a burst ends in one report of the final content
		write(t, path, fmt.Sprintf("burst %d\n", i))
	}
	c.await(t, "burst 19\n")
	c.none(t, "the rest of the burst")
	c.mu.Lock()
	reports := len(c.changes)
	c.mu.Unlock()
	if reports > 3 { // debounced: one report, or a few if the writer was stalled
		t.Fatalf("a burst of 20 writes gave %d reports", reports)
	}
	os.Remove(path)
	if got := c.next(t); !got.Removed || got.Hash != "" {
		t.Fatalf("removal reported as %+v", got)
	}
}

// A Kubernetes ConfigMap volume: the file is a symlink through ..data,
// which is swapped to a new timestamped directory; the file's own name
// never appears in an event.
func TestWatcherSeesConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	swap := func(version int, content string) {
		ts := filepath.Join(dir, fmt.Sprintf("..2026_11_29_%02d", version))
		os.Mkdir(ts, 0o755)
		write(t, filepath.Join(ts, "agent.yaml"), content)
		os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp"))
		os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
		if version > 1 {
			os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..2026_11_29_%02d", version-1)))
		}
	}
	swap(1, "v: 1\n")
	path := filepath.Join(dir, "agent.yaml")
	os.Symlink(filepath.Join("..data", "agent.yaml"), path)
	c := watch(t, Options{}, nil, path)
	swap(2, "v: 2\n")
	c.await(t, "v: 2\n")
}

// A watched directory removed and recreated is watched again.
func TestWatcherRewatchesRecreatedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf.d")
	os.Mkdir(dir, 0o755)
	path := filepath.Join(dir, "agent.yaml")
	write(t, path, "v: 1\n")
	c := watch(t, Options{Poll: 50 * time.Millisecond}, nil, path)
	os.RemoveAll(dir)
	if got := c.next(t); !got.Removed {
		t.Fatalf("directory removal reported %+v", got)
	}
	os.Mkdir(dir, 0o755)
	write(t, path, "v: 2\n")
	c.await(t, "v: 2\n")
	time.Sleep(200 * time.Millisecond) // the poll re-adds the inotify watch
	write(t, path, "v: 3\n")
	c.await(t, "v: 3\n")
}

// Without inotify (limits exhausted) changes are still seen, by polling.
func TestWatcherPollingFallback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.json")
	write(t, path, `{"v":1}`)
	c := watch(t, Options{Poll: 50 * time.Millisecond}, func(w *Watcher) { w.noInotify = true }, path)
	write(t, path, `{"v":2}`)
	c.await(t, `{"v":2}`)
}

// A slow host function never misses the final content: changes that pile
// up while it runs coalesce into the latest.
func TestWatcherCoalescesWhileHostIsBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	write(t, path, "v: 0\n")
	var mu sync.Mutex
	var seen []string
	release := make(chan struct{})
	w, _ := NewWatcher(Options{Debounce: 20 * time.Millisecond}, func(_ context.Context, ch Change) {
		<-release
		mu.Lock()
		seen = append(seen, string(ch.Data))
		mu.Unlock()
	})
	w.Add(path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond)
	for i := 1; i <= 5; i++ {
		write(t, path, fmt.Sprintf("v: %d\n", i))
		time.Sleep(60 * time.Millisecond) // each one debounced separately
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		last := ""
		if len(seen) > 0 {
			last = seen[len(seen)-1]
		}
		n := len(seen)
		mu.Unlock()
		if last == "v: 5\n" {
			if n > 2 {
				t.Fatalf("host called %d times for 5 changes while busy: %q", n, seen)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host never saw the final content; saw %q", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An inotify queue overflow makes the Watcher re-read every file. The
// queue is shrunk to force it (root only: a sysctl).
func TestWatcherRescansOnOverflow(t *testing.T) {
	const knob = "/proc/sys/fs/inotify/max_queued_events"
	old, err := os.ReadFile(knob)
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root to shrink the inotify queue")
	}
	if err := os.WriteFile(knob, []byte("16"), 0); err != nil {
		t.Skipf("cannot shrink the inotify queue: %v", err)
	}
	t.Cleanup(func() { os.WriteFile(knob, old, 0) })
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.yaml")
	write(t, path, "v: 1\n")
	blocked := make(chan struct{})
	c := &collector{notify: make(chan struct{}, 100)}
	w, _ := NewWatcher(Options{Debounce: 10 * time.Millisecond, Rescan: -1}, func(_ context.Context, ch Change) {
		c.mu.Lock()
		c.changes = append(c.changes, ch)
		c.mu.Unlock()
		c.notify <- struct{}{}
	})
	w.Add(path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// Hold the loop back until the kernel queue has overflowed.
		<-blocked
		w.Run(ctx)
		close(done)
	}()
	defer func() { cancel(); <-done }()
	close(blocked)
	time.Sleep(50 * time.Millisecond)
	// Flood the directory faster than the loop reads (many events per file),
	// with the change to our file in the middle of the flood.
	for i := range 2000 {
		write(t, filepath.Join(dir, fmt.Sprintf("noise-%d", i%50)), strings.Repeat("x", i%7))
		if i == 1000 {
			write(t, path, "v: 2\n")
		}
	}
	c.await(t, "v: 2\n")
	if w.overflows.Load() == 0 {
		t.Skip("the kernel queue did not overflow; the rescan path was not exercised")
	}
}

func TestWatcherRemove(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write(t, a, "a: 0\n")
	write(t, b, "b: 0\n")
	var w *Watcher
	c := watch(t, Options{}, func(x *Watcher) { w = x }, a, b)
	if err := w.Remove(a); err != nil {
		t.Fatal(err)
	}
	write(t, a, "a: 1\n")
	c.none(t, "a removed file")
	write(t, b, "b: 1\n")
	c.await(t, "b: 1\n") // the directory is still watched for b
}

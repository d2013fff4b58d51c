package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tend-dev/tend/internal/testagent"
)

func TestFileStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	recs := []Record{
		{Name: "b", State: Running, PID: 42, Restarts: 3, StartedAt: at, UpdatedAt: at},
		{Name: "a", State: Failed, LastExit: &Exit{Code: 2, Time: at}, UpdatedAt: at},
		{Name: "c", State: Stopped, UpdatedAt: at},
	}
	for _, r := range recs {
		if err := s.Put(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete("c"); err != nil {
		t.Fatal(err)
	}
	reopened, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := reopened.Load()
	if diff := cmp.Diff([]Record{recs[1], recs[0]}, got); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", info.Mode().Perm())
	}
}

func TestFileStoreRejectsCorruptFile(t *testing.T) {
	for _, content := range []string{`[{"name":`, `null`, " null\n", `{}`, `"x"`} {
		path := filepath.Join(t.TempDir(), "state.json")
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := NewFileStore(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("store holding %q: %v, want an error naming %s", content, err, path)
		}
	}
}

// Temporary files of writes a crash interrupted are removed on open: those
// of dead processes, or with no PID in their name. A live process's write
// under way keeps its file, and other files are left alone.
func TestFileStoreRemovesStaleTemporaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := []string{".state.json.tmp-123abc", fmt.Sprintf(".state.json.tmp-%d-4567", dead.Process.Pid)}
	kept := []string{"state.json", ".other.json.tmp-1", "state.json.bak", fmt.Sprintf(".state.json.tmp-%d-89", os.Getpid())}
	for _, name := range append(slices.Clone(stale), kept...) {
		os.WriteFile(filepath.Join(dir, name), []byte("[]"), 0o600)
	}
	if _, err := NewFileStore(path); err != nil {
		t.Fatal(err)
	}
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("stale %s still there (%v)", name, err)
		}
	}
	for _, name := range kept {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed: %v", name, err)
		}
	}
}

// Concurrent Puts are written together, and each returns only once the
// file holds its record.
func TestFileStoreConcurrentPutsAreDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("agent-%02d", i)
			if err := s.Put(Record{Name: name, State: Stopped}); err != nil {
				errs <- err
				return
			}
			b, err := os.ReadFile(path)
			if err != nil || !strings.Contains(string(b), `"`+name+`"`) {
				errs <- fmt.Errorf("Put of %s returned before the file held it (%v)", name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

const storeWriterEnv = "TEND_TEST_STORE_WRITER"

// A host killed while writing its state leaves a file that still loads.
func TestFileStoreSurvivesCrashMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	testagent.KillMidWrite(t, storeWriterEnv, path, 20, func(round int) {
		s, err := NewFileStore(path)
		if err != nil {
			t.Fatalf("round %d: the store does not load after a crash: %v", round, err)
		}
		recs, _ := s.Load()
		for i, r := range recs {
			if r.Name != fmt.Sprintf("agent-%02d", i) || r.State != Running || r.UpdatedAt.IsZero() {
				t.Fatalf("round %d: record %d is %+v", round, i, r)
			}
		}
	})
}

// runStoreWriter is the writer process of the crash test: it rewrites the
// store until it is killed.
func runStoreWriter(path string) {
	s, err := NewFileStore(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		for a := range 50 {
			s.Put(Record{Name: fmt.Sprintf("agent-%02d", a), State: Running, Restarts: i, UpdatedAt: time.Now()})
		}
	}
}

// A Group writes every member's transitions to its Store, and forgets
// removed agents.
func TestGroupPersistsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	store, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, GroupOptions{Store: store})
	g.Add(groupSpec(t, "a"))
	g.Add(groupSpec(t, "b"))
	if err := g.StartAll(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := pidsOf(g)
	waitRecords(t, path, func(recs []Record) bool {
		return len(recs) == 2 && recs[0].State == Running && recs[0].PID == want["a"] && recs[1].PID == want["b"]
	})
	if err := g.Remove(ctxTimeout(t, 5*time.Second), "a"); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, path, func(recs []Record) bool { return len(recs) == 1 && recs[0].Name == "b" })
	time.Sleep(100 * time.Millisecond) // a late event of "a" must not bring it back
	waitRecords(t, path, func(recs []Record) bool { return len(recs) == 1 && recs[0].Name == "b" })
	if err := g.StopAll(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Written before StopAll returned: a host exiting now keeps it.
	reopened, err := NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := reopened.Load(); len(recs) != 1 || recs[0].State != Stopped || recs[0].PID != 0 {
		t.Fatalf("records right after StopAll: %+v", recs)
	}
	time.Sleep(100 * time.Millisecond) // late events must not overwrite the final record
	waitRecords(t, path, func(recs []Record) bool { return len(recs) == 1 && recs[0].State == Stopped })
}

func waitRecords(t *testing.T, path string, ok func([]Record) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := NewFileStore(path)
		if err == nil {
			if recs, _ := s.Load(); ok(recs) {
				return
			}
		}
		if time.Now().After(deadline) {
			recs := []Record(nil)
			if s != nil {
				recs, _ = s.Load()
			}
			t.Fatalf("store never reached the wanted state; last %+v (err %v)", recs, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type failingStore struct{ puts atomic.Int64 }

func (s *failingStore) Put(Record) error        { s.puts.Add(1); return syscall.ENOSPC }
func (s *failingStore) Delete(string) error     { return syscall.ENOSPC }
func (s *failingStore) Load() ([]Record, error) { return nil, nil }

func TestFailingStoreNeverStopsSupervision(t *testing.T) {
	store := &failingStore{}
	g := newGroup(t, GroupOptions{Store: store})
	s := groupSpec(t, "a", "-exit", "1", "-after", "100ms")
	g.Add(s)
	events := make(chan Event, 100)
	defer g.Subscribe(func(e Event) { events <- e })()
	if err := g.StartAll(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	for e := range events {
		if e.To == Running && e.Status.Restarts == 2 {
			break
		}
	}
	if store.puts.Load() == 0 {
		t.Fatal("the store was never called")
	}
	if err := g.Remove(ctxTimeout(t, 5*time.Second), "a"); err != nil {
		t.Fatalf("Remove with a failing store: %v", err)
	}
}

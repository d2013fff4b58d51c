package supervisor

import (
	"os"
	"syscall"
	"testing"
)

// pipeFDs returns n fresh descriptors (read ends of pipes) and closes
// the write ends.
func pipeFDs(t *testing.T, n int) []int {
	t.Helper()
	var fds []int
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		fd, err := syscall.Dup(int(r.Fd()))
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	return fds
}

// The store keeps up to its bound, one copy of an open file, names them,
// removes by name, and closes what it gives up.
func TestFDStore(t *testing.T) {
	s := &fdStore{max: 3}
	fds := pipeFDs(t, 4)
	if rejected := s.add("", fds[:2]); len(rejected) != 0 {
		t.Fatalf("rejected %v", rejected)
	}
	dup, err := syscall.Dup(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	if rejected := s.add("web", []int{dup, fds[2], fds[3]}); len(rejected) != 2 || rejected[0] != dup || rejected[1] != fds[3] {
		t.Fatalf("rejected %v, want the duplicate %d and the one over the bound %d", rejected, dup, fds[3])
	}
	syscall.Close(dup)
	syscall.Close(fds[3])
	names := func() (out []string) {
		for _, f := range s.list() {
			out = append(out, f.name)
		}
		return out
	}
	if got := names(); len(got) != 3 || got[0] != defaultStoredName || got[2] != "web" {
		t.Fatalf("stored %v", got)
	}
	s.remove(defaultStoredName)
	if got := names(); len(got) != 1 || got[0] != "web" {
		t.Fatalf("after FDSTOREREMOVE: %v", got)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fds[0], &st); err != syscall.EBADF {
		t.Fatalf("a removed descriptor is still open: %v", err)
	}
	s.empty()
	if len(s.list()) != 0 || syscall.Fstat(fds[2], &st) != syscall.EBADF {
		t.Fatal("empty left descriptors open")
	}
}

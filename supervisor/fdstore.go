package supervisor

import (
	"os"
	"sync"
	"syscall"
)

// namedFile is a descriptor handed to every child of an agent, with the
// name it gets in LISTEN_FDNAMES.
type namedFile struct {
	name string
	file *os.File
}

// defaultStoredName is what a stored descriptor is called when FDSTORE=1
// came without FDNAME=, as in systemd.
const defaultStoredName = "stored"

// fdStore holds the descriptors an agent parked with FDSTORE=1 (systemd's
// file descriptor store). It belongs to the agent, not to one child: a
// restarted child gets them back, after the listeners, as LISTEN_FDS. It
// is bounded by Spec.FDStoreMax, emptied by a requested Stop, and closed
// with the agent. The notify reader adds and removes, the owner reads.
type fdStore struct {
	mu    sync.Mutex
	max   int
	files []namedFile
}

// add keeps fds under name, up to the store's bound; a descriptor already
// stored (the same open file) is not kept twice. It returns the
// descriptors it did not keep, for the caller to close.
func (s *fdStore) add(name string, fds []int) (rejected []int) {
	if s == nil {
		return fds
	}
	if name == "" {
		name = defaultStoredName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fd := range fds {
		if len(s.files) >= s.max || s.holds(fd) {
			rejected = append(rejected, fd)
			continue
		}
		s.files = append(s.files, namedFile{name: name, file: os.NewFile(uintptr(fd), name)})
	}
	return rejected
}

// holds reports whether the store has a descriptor for the same open
// file as fd (same device and inode: a socket's inode is its own).
func (s *fdStore) holds(fd int) bool {
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil {
		return false
	}
	for _, f := range s.files {
		var have syscall.Stat_t
		if syscall.Fstat(int(f.file.Fd()), &have) == nil && have.Dev == st.Dev && have.Ino == st.Ino {
			return true
		}
	}
	return false
}

// remove closes every stored descriptor called name (FDSTOREREMOVE=1).
func (s *fdStore) remove(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.files[:0]
	for _, f := range s.files {
		if f.name == name {
			f.file.Close()
		} else {
			kept = append(kept, f)
		}
	}
	clear(s.files[len(kept):])
	s.files = kept
}

// list returns the stored descriptors, for the next child.
func (s *fdStore) list() []namedFile {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]namedFile(nil), s.files...)
}

// setMax changes the bound; descriptors over a lowered bound are closed,
// the latest first.
func (s *fdStore) setMax(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.max = n
	s.truncate(n)
}

// empty closes every stored descriptor.
func (s *fdStore) empty() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.truncate(0)
}

func (s *fdStore) truncate(n int) {
	for len(s.files) > n {
		last := len(s.files) - 1
		s.files[last].file.Close()
		s.files[last] = namedFile{}
		s.files = s.files[:last]
	}
}

package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tend-dev/tend/internal/atomicfile"
)

// Record is what a Store keeps of one agent: its last known state.
type Record struct {
	Name      string    `json:"name"`                // the agent's name
	State     State     `json:"state"`               // its state at UpdatedAt
	PID       int       `json:"pid,omitempty"`       // its child then, if any
	Restarts  int       `json:"restarts"`            // automatic restarts so far
	LastExit  *Exit     `json:"last_exit,omitempty"` // without the output tail
	StartedAt time.Time `json:"started_at,omitzero"` // when that child was spawned
	UpdatedAt time.Time `json:"updated_at"`          // when this record was taken
}

// Store persists the agents' metadata. A Group calls Put after every
// transition, from the agent's event goroutine, and Delete when an agent is
// removed; an error is logged and never stops supervision. Implementations
// must be safe for concurrent use.
type Store interface {
	Put(Record) error
	Delete(name string) error
	Load() ([]Record, error)
}

// recordOf is what a Store keeps of st, as of at.
func recordOf(st Status, at time.Time) Record {
	r := Record{Name: st.Name, State: st.State, PID: st.PID, Restarts: st.Restarts,
		StartedAt: st.StartedAt, UpdatedAt: at}
	if st.LastExit != nil {
		exit := *st.LastExit
		exit.Tail = ""
		r.LastExit = &exit
	}
	return r
}

// FileStore is a Store in one JSON file, replaced atomically (temporary
// file, fsync, rename, fsync of the directory) on every change, so a crash
// of the host at any moment leaves the previous or the new content. Writes
// that arrive while one is under way are coalesced into the next.
type FileStore struct {
	path string

	mu       sync.Mutex
	records  map[string]Record
	flushing bool // a goroutine is writing; others just mark dirty
	dirty    bool
	flushErr error
}

// NewFileStore opens the store at path, reading the records a previous run
// left there. A missing file is an empty store; an unreadable or corrupt
// one is an error naming the path.
func NewFileStore(path string) (*FileStore, error) {
	s := &FileStore{path: path, records: map[string]Record{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("state store %s: %w", path, err)
	}
	var records []Record
	if err := json.Unmarshal(b, &records); err != nil {
		return nil, fmt.Errorf("state store %s: corrupt: %w", path, err)
	}
	for _, r := range records {
		s.records[r.Name] = r
	}
	return s, nil
}

// Put records r and writes the file.
func (s *FileStore) Put(r Record) error {
	return s.change(func(m map[string]Record) { m[r.Name] = r })
}

// Delete forgets the agent name and writes the file.
func (s *FileStore) Delete(name string) error {
	return s.change(func(m map[string]Record) { delete(m, name) })
}

// Load returns the records sorted by name.
func (s *FileStore) Load() ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sorted(), nil
}

func (s *FileStore) sorted() []Record {
	out := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// change applies edit and makes sure the file catches up: the caller either
// writes it itself or leaves the change to the writer already at work,
// which writes again before it stops.
func (s *FileStore) change(edit func(map[string]Record)) error {
	s.mu.Lock()
	edit(s.records)
	if s.flushing {
		s.dirty = true
		err := s.flushErr
		s.mu.Unlock()
		return err
	}
	s.flushing = true
	for {
		s.dirty = false
		b, err := json.MarshalIndent(s.sorted(), "", "  ")
		s.mu.Unlock()
		if err == nil {
			err = atomicfile.Write(s.path, append(b, '\n'), 0o600)
		}
		s.mu.Lock()
		s.flushErr = err
		if !s.dirty || err != nil {
			s.flushing = false
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("state store %s: %w", s.path, err)
			}
			return nil
		}
	}
}

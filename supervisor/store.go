package supervisor

import (
	"bytes"
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
	Name     string `json:"name"`          // the agent's name
	State    State  `json:"state"`         // its state at UpdatedAt
	PID      int    `json:"pid,omitempty"` // its child then, if any
	Restarts int    `json:"restarts"`      // automatic restarts so far
	// RestartsBy counts its restarts by cause so far.
	RestartsBy RestartCounts `json:"restarts_by,omitzero"`
	LastExit   *Exit         `json:"last_exit,omitempty"` // without the output tail
	StartedAt  time.Time     `json:"started_at,omitzero"` // when that child was spawned
	// LeaderStart and Exe identify that child beyond its PID (its start
	// time in clock ticks after boot, the binary it ran when the record
	// was taken), so that a later host kills it only if it is still that
	// very process.
	LeaderStart uint64    `json:"leader_start,omitempty"`
	Exe         string    `json:"exe,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"` // when this record was taken
	// Held is set when the operator stopped the agent (Group.Stop) and
	// cleared when it is started again (Group.Start, Restart): a Group
	// that reads the record back leaves a held agent stopped.
	Held bool `json:"held,omitempty"`
}

// Store persists the agents' metadata. A Group calls Put after every
// transition, from the agent's event goroutine, and Delete when an agent is
// removed; an error is logged and never stops supervision. NewGroup calls
// Load once, to restore what a previous run of the host left (see
// GroupOptions.Store). Implementations must be safe for concurrent use.
type Store interface {
	Put(Record) error
	Delete(name string) error
	Load() ([]Record, error)
}

// recordOf is what a Store keeps of st, as of at.
func recordOf(st Status, at time.Time) Record {
	r := Record{Name: st.Name, State: st.State, PID: st.PID, Restarts: st.Restarts,
		RestartsBy: st.RestartsBy, StartedAt: st.StartedAt, UpdatedAt: at, LeaderStart: st.LeaderStart}
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

	mu      sync.Mutex
	written *sync.Cond // broadcast after every write attempt
	records map[string]Record
	edits   uint64 // changes made to records so far
	onDisk  uint64 // changes the file holds
	writing bool   // a caller is writing the file for all waiting ones
	tried   uint64 // changes the last write attempt covered
	lastErr error  // that attempt's error
}

// NewFileStore opens the store at path, reading the records a previous run
// left there, and removes the temporary files of writes that a crash
// interrupted. A missing file is an empty store; an unreadable or corrupt
// one (including one that holds JSON null rather than a list) is an error
// naming the path.
func NewFileStore(path string) (*FileStore, error) {
	s := &FileStore{path: path, records: map[string]Record{}}
	s.written = sync.NewCond(&s.mu)
	if err := atomicfile.RemoveStale(path); err != nil {
		return nil, fmt.Errorf("state store %s: remove stale temporary files: %w", path, err)
	}
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
	if records == nil { // null, which json reads as an empty list
		return nil, fmt.Errorf("state store %s: corrupt: holds %s, not a list of records", path, bytes.TrimSpace(b))
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

// change applies edit and returns once the file holds it. Changes made
// while a write is under way are written together by one of their
// callers, so a burst of Puts from many agents costs a few writes, not
// one each.
func (s *FileStore) change(edit func(map[string]Record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(s.records)
	s.edits++
	mine := s.edits
	for {
		switch {
		case s.onDisk >= mine:
			return nil
		case s.tried >= mine && s.lastErr != nil:
			return fmt.Errorf("state store %s: %w", s.path, s.lastErr)
		case s.writing:
			s.written.Wait()
			continue
		}
		s.writing = true
		covers := s.edits
		b, err := json.MarshalIndent(s.sorted(), "", "  ")
		s.mu.Unlock()
		if err == nil {
			err = atomicfile.Write(s.path, append(b, '\n'), 0o600)
		}
		s.mu.Lock()
		s.writing = false
		s.tried, s.lastErr = covers, err
		if err == nil {
			s.onDisk = covers
		}
		s.written.Broadcast()
	}
}

package logs

import (
	"bytes"
	"sync"
	"time"
)

// maxLineBytes bounds a partial line: a longer one is written out as a
// line of its own. (One that waits longer than Options.PartialLineWait
// for its newline is written with a newline added.)
const maxLineBytes = 64 << 10

// Stream is one writer of a Rotator (an agent's stdout, say) that hands
// the file only whole lines, each with the Rotator's Prefix. Several
// Streams share one file without interleaving inside a line. It is safe
// for concurrent use; in the steady state it allocates nothing per line.
type Stream struct {
	r    *Rotator
	name string

	mu      sync.Mutex
	partial []byte // the unfinished last line
	scratch []byte // whole lines with prefixes, reused
	idle    *time.Timer
}

// Stream returns a new line-framing writer into r named name (used by the
// prefix). Close of the Rotator flushes it.
func (r *Rotator) Stream(name string) *Stream {
	s := &Stream{r: r, name: name}
	r.mu.Lock()
	r.streams = append(r.streams, s)
	r.mu.Unlock()
	return s
}

// Write frames p into lines and writes the complete ones, as one Rotator
// write, so they land whole in one file. It returns len(p), or ErrClosed
// once the Rotator is closed.
func (s *Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	now := time.Now()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			break
		}
		s.appendLine(now, s.partial, p[:i+1])
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
	if len(s.partial) > maxLineBytes {
		s.appendLine(now, s.partial, []byte{'\n'})
		s.partial = s.partial[:0]
	}
	err := s.emit()
	s.armIdleFlush()
	if err != nil {
		return 0, err
	}
	return n, nil
}

// appendLine adds the prefix, head and tail (tail ends with the newline)
// to the scratch buffer.
func (s *Stream) appendLine(now time.Time, head, tail []byte) {
	pre := s.r.opts.Prefix
	if pre.Timestamp != "" {
		s.scratch = now.AppendFormat(s.scratch, pre.Timestamp)
		s.scratch = append(s.scratch, ' ')
	}
	if pre.Stream {
		s.scratch = append(s.scratch, s.name...)
		s.scratch = append(s.scratch, ':', ' ')
	}
	s.scratch = append(s.scratch, head...)
	s.scratch = append(s.scratch, tail...)
}

func (s *Stream) emit() error {
	if len(s.scratch) == 0 {
		return nil
	}
	_, err := s.r.Write(s.scratch)
	s.scratch = s.scratch[:0]
	return err
}

// armIdleFlush makes sure a partial line does not wait forever for its
// newline (an agent that crashed mid-line, a prompt).
func (s *Stream) armIdleFlush() {
	switch {
	case len(s.partial) == 0 && s.idle != nil:
		s.idle.Stop()
	case len(s.partial) > 0 && s.idle == nil:
		s.idle = time.AfterFunc(s.r.opts.PartialLineWait.Std(), s.Flush)
	case len(s.partial) > 0:
		s.idle.Reset(s.r.opts.PartialLineWait.Std())
	}
}

// Flush writes a pending partial line, with a newline added.
func (s *Stream) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
	}
	if len(s.partial) == 0 {
		return
	}
	s.appendLine(time.Now(), s.partial, []byte{'\n'})
	s.partial = s.partial[:0]
	s.emit() //nolint:errcheck // a closed Rotator has nothing left to flush to
}

// TakePartial returns the pending partial line and forgets it, without
// writing it: a supervisor handing its agents over to a new binary
// (supervisor.Group.Handover) carries it to the Stream of the same agent
// there, so the line is written once and whole. Nil if there is none.
func (s *Stream) TakePartial() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle != nil {
		s.idle.Stop()
	}
	if len(s.partial) == 0 {
		return nil
	}
	p := append([]byte(nil), s.partial...)
	s.partial = s.partial[:0]
	return p
}

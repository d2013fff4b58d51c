package supervisor

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// childOutput is the set of a child's piped streams and their copiers.
type childOutput struct {
	copiers []*pipeCopier
	running sync.WaitGroup
}

// pipeCopier drains one pipe into the host's writer and the crash tail.
type pipeCopier struct {
	r       *os.File
	w       io.Writer // nil: only the tail sees the data
	name    string
	flushed chan struct{} // closed once what was in the pipe at flush is copied
	// detaching: a hand-over stops the copier (childOutput.detach);
	// pending is the unfinished line it took from w then, given back
	// first when the copier runs again (here or in the next binary).
	detaching atomic.Bool
	pending   []byte
}

func (o *childOutput) add(r *os.File, w io.Writer, name string) {
	o.copiers = append(o.copiers, &pipeCopier{r: r, w: w, name: name, flushed: make(chan struct{})})
}

func (o *childOutput) start(tail *tailBuffer, log logr.Logger) {
	for _, p := range o.copiers {
		o.running.Add(1)
		go func() {
			defer o.running.Done()
			p.run(tail, log)
		}()
	}
}

// flush returns once everything already written into the pipes is copied.
// Called when the child's process group is gone: whatever the group wrote
// is then in the pipe buffers, and nothing but an escaped descendant can
// add to them, so the Exit's tail is complete without waiting for EOF.
func (o *childOutput) flush() {
	for _, p := range o.copiers {
		p.r.SetReadDeadline(time.Unix(1, 0)) //nolint:errcheck // a pipe supports deadlines; a copier at EOF is done anyway
	}
	for _, p := range o.copiers {
		<-p.flushed
	}
}

// finish waits for the copiers to end, at EOF or drainTimeout after the
// flush, and closes the pipes.
func (o *childOutput) finish() {
	o.running.Wait()
	o.closePipes()
}

func (o *childOutput) closePipes() {
	for _, p := range o.copiers {
		p.r.Close()
	}
}

// run copies until EOF. A flush request arrives as an expired read
// deadline: run then copies what the pipe holds without waiting, reports
// the flush, and goes on for drainTimeout at most. A write error is logged
// (rate-limited) and the data dropped, but reading goes on: the child must
// never block on a full pipe or die of SIGPIPE because the host's writer
// failed.
func (p *pipeCopier) run(tail *tailBuffer, log logr.Logger) {
	flushed := false
	defer func() {
		if !flushed && !p.detaching.Load() {
			close(p.flushed)
		}
	}()
	limiter := errorLimiter{every: 10 * time.Second}
	deliver := func(b []byte) {
		tail.Write(b) //nolint:errcheck // never fails
		if p.w == nil {
			return
		}
		if _, err := p.w.Write(b); err != nil {
			if dropped, ok := limiter.allow(time.Now()); ok {
				log.Error(err, "output writer failed; dropping output", "stream", p.name, "droppedWrites", dropped)
			}
		}
	}
	// The unfinished line a hand-over carried goes first, and the pipe is
	// read right after it: the rest of the line is there, and nothing
	// waits in between for the writer's partial-line timer to cut it.
	if len(p.pending) > 0 && p.w != nil {
		p.w.Write(p.pending) //nolint:errcheck // as any output write: a failing writer drops it (the tail has the bytes already)
	}
	p.pending = nil
	buf := make([]byte, minCopyBuffer)
	for {
		n, err := p.r.Read(buf)
		deliver(buf[:n])
		switch {
		case err == nil:
			if n == len(buf) && len(buf) < maxCopyBuffer {
				buf = make([]byte, 2*len(buf)) // the agent writes in bursts: read more at once
			}
		case errors.Is(err, os.ErrDeadlineExceeded) && p.detaching.Load():
			return // what is still in the pipe is the next binary's
		case errors.Is(err, os.ErrDeadlineExceeded) && !flushed:
			eof := p.copyBuffered(buf, deliver)
			close(p.flushed)
			flushed = true
			if eof {
				return
			}
			p.r.SetReadDeadline(time.Now().Add(drainTimeout)) //nolint:errcheck // as in flush
		default: // EOF, or the drain time after the exit is over
			return
		}
	}
}

// copyBuffered copies what the pipe holds without blocking (the read end
// is non-blocking) and reports whether it reached EOF.
func (p *pipeCopier) copyBuffered(buf []byte, deliver func([]byte)) (eof bool) {
	rc, err := p.r.SyscallConn()
	if err != nil {
		return true
	}
	for {
		var n int
		var rerr error
		if err := rc.Control(func(fd uintptr) { n, rerr = syscall.Read(int(fd), buf) }); err != nil {
			return true
		}
		switch {
		case n > 0:
			deliver(buf[:n])
		case errors.Is(rerr, syscall.EINTR):
		default:
			return rerr == nil // 0 bytes and no error is EOF; EAGAIN: nothing more buffered
		}
	}
}

package supervisor

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Output pipe read sizes: reads start small, so a quiet agent holds little
// memory, and grow while they come back full, up to a size that keeps a
// burst of log lines cheap.
const (
	minCopyBuffer = 512
	maxCopyBuffer = 8 << 10
)

// drainTimeout bounds how long output copying may go on after the child's
// process group is gone; only a grandchild that escaped the group (setsid)
// can hold a pipe open that long.
const drainTimeout = 2 * time.Second

// tailBuffer keeps the last size bytes written to it, growing to that size
// only as output arrives. Stdout and stderr copiers share one, so it shows
// the end of the output as it interleaved.
type tailBuffer struct {
	mu   sync.Mutex
	size int
	buf  []byte
	next int // write position once len(buf) == size
}

func newTailBuffer(size int) *tailBuffer {
	if size <= 0 {
		return nil
	}
	return &tailBuffer{size: size}
}

// Write keeps the end of p; it never fails.
func (t *tailBuffer) Write(p []byte) (int, error) {
	if t == nil {
		return len(p), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.size {
		p = p[len(p)-t.size:]
	}
	for len(p) > 0 {
		if len(t.buf) < t.size {
			k := min(t.size-len(t.buf), len(p))
			t.buf = append(t.buf, p[:k]...)
			p = p[k:]
			continue
		}
		k := copy(t.buf[t.next:], p)
		p = p[k:]
		t.next = (t.next + k) % t.size
	}
	return n, nil
}

// String returns the kept bytes, oldest first.
func (t *tailBuffer) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) < t.size {
		return string(t.buf)
	}
	return string(t.buf[t.next:]) + string(t.buf[:t.next])
}

// copyOutput drains r into w and tail until EOF or until r is closed. A
// write error is logged (rate-limited) and the data dropped, but reading
// goes on: the child must never block on a full pipe or die of SIGPIPE
// because the host's writer failed.
func copyOutput(r *os.File, w io.Writer, tail *tailBuffer, stream string, log logr.Logger) {
	buf := make([]byte, minCopyBuffer)
	limiter := errorLimiter{every: 10 * time.Second}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			tail.Write(buf[:n]) //nolint:errcheck // never fails
			if w != nil {
				if _, werr := w.Write(buf[:n]); werr != nil {
					if dropped, ok := limiter.allow(time.Now()); ok {
						log.Error(werr, "output writer failed; dropping output", "stream", stream, "droppedWrites", dropped)
					}
				}
			}
		}
		if err != nil {
			return
		}
		if n == len(buf) && len(buf) < maxCopyBuffer {
			buf = make([]byte, 2*len(buf)) // the agent writes in bursts: read more at once
		}
	}
}

// errorLimiter lets one report through per interval and counts the rest.
type errorLimiter struct {
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many reports were suppressed
// since the last one that was let through.
func (l *errorLimiter) allow(now time.Time) (suppressed int, ok bool) {
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return 0, false
	}
	suppressed, l.suppressed, l.last = l.suppressed, 0, now
	return suppressed, true
}

package supervisor

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// copyBufferSize is the read size of an output pipe: large enough for a
// burst of log lines, small enough that a thousand idle agents stay cheap.
const copyBufferSize = 8 << 10

// drainTimeout bounds how long output copying may go on after the child's
// process group is gone; only a grandchild that escaped the group (setsid)
// can hold a pipe open that long.
const drainTimeout = 2 * time.Second

// tailBuffer keeps the last cap bytes written to it. Stdout and stderr
// copiers share one, so it shows the end of the output as it interleaved.
type tailBuffer struct {
	mu   sync.Mutex
	buf  []byte
	next int // write position once full
	full bool
}

func newTailBuffer(size int) *tailBuffer {
	if size <= 0 {
		return nil
	}
	return &tailBuffer{buf: make([]byte, 0, size)}
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	if t == nil {
		return len(p), nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	size := cap(t.buf)
	if len(p) >= size {
		p = p[len(p)-size:]
	}
	for len(p) > 0 {
		if !t.full {
			room := size - len(t.buf)
			k := min(room, len(p))
			t.buf = append(t.buf, p[:k]...)
			p = p[k:]
			t.full = len(t.buf) == size
			continue
		}
		k := copy(t.buf[t.next:], p)
		p = p[k:]
		t.next = (t.next + k) % size
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
	if !t.full {
		return string(t.buf)
	}
	return string(t.buf[t.next:]) + string(t.buf[:t.next])
}

// copyOutput drains r into w and tail until EOF or until r is closed. A
// write error is logged (rate-limited) and the data dropped, but reading
// goes on: the child must never block on a full pipe or die of SIGPIPE
// because the host's writer failed.
func copyOutput(r *os.File, w io.Writer, tail *tailBuffer, stream string, log logr.Logger) {
	buf := make([]byte, copyBufferSize)
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

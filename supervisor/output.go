package supervisor

import (
	"sync"
	"time"
)

// Output pipe read sizes: reads start small, so a quiet agent holds little
// memory, and grow while they come back full, up to a size that keeps a
// burst of log lines cheap.
const (
	minCopyBuffer = 512
	maxCopyBuffer = 8 << 10
)

// drainTimeout bounds how long output is still copied after the child's
// Exit was delivered; only a descendant that escaped the process group
// (setsid) can hold a pipe open that long.
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

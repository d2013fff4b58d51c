package testagent

import (
	"strings"
	"sync"
)

// Output collects what a child writes (its stdout, stderr, or a daemon's
// log) for a test to read while the child still writes: Write, String
// and Reset are safe for concurrent use.
type Output struct {
	mu  sync.Mutex
	buf strings.Builder
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written since the last Reset.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Reset forgets what was written.
func (o *Output) Reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Reset()
}

package health

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Message is one heartbeat line an agent writes to its socket:
//
//	{"agent_id":"filebeat-logs","pid":4242,"status":"running","cpu":3.5,"memory":73400320,"timestamp":"2026-11-29T05:00:00Z"}
//
// status is running, stopping or error; cpu (percent) and memory (bytes)
// are what the agent measured itself; timestamp is RFC 3339 or Unix seconds.
type Message struct {
	AgentID   string    `json:"agent_id"`           // who reports; must match the server's
	PID       int       `json:"pid,omitempty"`      // the agent's own PID, as it sees it
	Status    string    `json:"status"`             // running, stopping or error
	CPU       float64   `json:"cpu,omitempty"`      // percent of one core, measured by the agent
	Memory    uint64    `json:"memory,omitempty"`   // bytes, measured by the agent
	Timestamp time.Time `json:"timestamp,omitzero"` // when the agent wrote the line
}

// ParseMessage parses and checks one heartbeat line.
func ParseMessage(line []byte) (Message, error) {
	var raw struct {
		AgentID   string          `json:"agent_id"`
		PID       int             `json:"pid"`
		Status    string          `json:"status"`
		CPU       float64         `json:"cpu"`
		Memory    uint64          `json:"memory"`
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return Message{}, fmt.Errorf("bad JSON: %w", err)
	}
	m := Message{AgentID: raw.AgentID, PID: raw.PID, Status: raw.Status, CPU: raw.CPU, Memory: raw.Memory}
	switch {
	case m.AgentID == "":
		return Message{}, errors.New("no agent_id")
	case m.Status != "running" && m.Status != "stopping" && m.Status != "error":
		return Message{}, fmt.Errorf("status %q is not running, stopping or error", m.Status)
	case m.PID < 0 || m.CPU < 0:
		return Message{}, errors.New("negative pid or cpu")
	}
	if len(raw.Timestamp) > 0 && string(raw.Timestamp) != "null" {
		if err := json.Unmarshal(raw.Timestamp, &m.Timestamp); err != nil {
			var secs float64
			if json.Unmarshal(raw.Timestamp, &secs) != nil || secs < 0 || secs > 1e11 {
				return Message{}, fmt.Errorf("timestamp %s: want RFC 3339 or Unix seconds", raw.Timestamp)
			}
			m.Timestamp = time.Unix(0, int64(secs*1e9)).UTC()
		}
	}
	return m, nil
}

// ServerOptions configures a HeartbeatServer.
type ServerOptions struct {
	// Path is the Unix socket (the daemon config format's socket_path). Required.
	Path string
	// AgentID is the only agent_id accepted.
	AgentID string
	// Heartbeat is fed by every valid line. Required.
	Heartbeat *Heartbeat
	// Mode of the socket file. Default 0600: only the host's user may
	// connect, unless told otherwise.
	Mode fs.FileMode
	// MaxLineBytes caps a line; a longer one drops the connection.
	// Default 4096.
	MaxLineBytes int
	// IdleTimeout drops a connection that sends nothing this long.
	// Default 90s.
	IdleTimeout time.Duration
	// MaxConns caps concurrent connections; more are refused. Default 64.
	MaxConns int
	// Logger receives the reason of every dropped connection.
	Logger logr.Logger
}

// ServerStats counts what a HeartbeatServer accepted and refused.
type ServerStats struct {
	Lines         int64 // valid heartbeats
	BadLines      int64 // invalid JSON or fields
	WrongAgent    int64 // another agent_id
	TooLong       int64 // over MaxLineBytes
	Idle          int64 // connections dropped for silence
	RefusedConns  int64 // over MaxConns
	AcceptedConns int64 // connections served
	AcceptErrors  int64 // failed accepts (out of file descriptors, say), all retried
}

// HeartbeatServer accepts heartbeat lines on a Unix socket for one agent.
// Bad input never hurts it: an oversized line, bad JSON or a wrong
// agent_id drops that connection with a logged reason, a silent client is
// dropped after IdleTimeout, connections beyond MaxConns are refused, and
// the rest keep being served.
type HeartbeatServer struct {
	opts ServerOptions
	ln   *net.UnixListener

	mu    sync.Mutex
	last  Message
	seen  bool
	stats ServerStats
	conns map[net.Conn]struct{}
}

// NewHeartbeatServer listens on opts.Path. A socket file left by a crashed
// host is replaced; one that a live server still answers on is an error.
func NewHeartbeatServer(opts ServerOptions) (*HeartbeatServer, error) {
	switch {
	case opts.Path == "":
		return nil, errors.New("heartbeat server: socket_path is empty")
	case opts.Heartbeat == nil:
		return nil, errors.New("heartbeat server: no Heartbeat to feed")
	}
	opts.Mode = cmp.Or(opts.Mode, 0o600)
	opts.MaxLineBytes = cmp.Or(opts.MaxLineBytes, 4096)
	opts.IdleTimeout = cmp.Or(opts.IdleTimeout, DefaultHeartbeatTimeout)
	opts.MaxConns = cmp.Or(opts.MaxConns, 64)
	if err := removeStaleSocket(opts.Path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: opts.Path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("heartbeat socket %s: %w", opts.Path, err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(opts.Path, opts.Mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("heartbeat socket %s: %w", opts.Path, err)
	}
	return &HeartbeatServer{opts: opts, ln: ln, conns: map[net.Conn]struct{}{}}, nil
}

func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("heartbeat socket %s: %w", path, err)
	}
	if info.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("heartbeat socket %s: exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("heartbeat socket %s: another server is listening", path)
	}
	return os.Remove(path)
}

// Accept failures (the host out of file descriptors, say) are retried
// after a pause that grows from 5 ms to 1 s, as net/http does, so that
// beats queued meanwhile are served once descriptors are free again.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// Serve accepts connections until ctx ends, then closes the listener (which
// removes the socket file) and every connection, waits for their
// goroutines and returns nil. A failing accept never ends it: the error is
// counted and logged (at most every 10 s) and accepting is retried. Only a
// listener closed by someone else makes it return early, with an error.
func (s *HeartbeatServer) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	var pause time.Duration
	var lastLogged time.Time
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, net.ErrClosed):
				return fmt.Errorf("heartbeat socket %s: listener closed before the context ended: %w", s.opts.Path, err)
			}
			pause = min(max(2*pause, acceptRetryMin), acceptRetryMax)
			s.mu.Lock()
			s.stats.AcceptErrors++
			s.mu.Unlock()
			if now := time.Now(); now.Sub(lastLogged) >= errorLogEvery {
				lastLogged = now
				s.opts.Logger.Error(err, "cannot accept heartbeat connection; retrying", "socket", s.opts.Path, "retryIn", pause.String())
			}
			if sleepCtx(ctx, pause) != nil {
				return nil
			}
			continue
		}
		pause = 0
		if !s.track(conn) {
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.untrack(conn)
			s.serveConn(conn)
		}()
	}
}

// errorLogEvery is how often a persisting accept failure is logged.
const errorLogEvery = 10 * time.Second

// sleepCtx waits d or until ctx ends, whichever is first, and returns
// ctx's error in the latter case.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *HeartbeatServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.opts.MaxConns {
		s.stats.RefusedConns++
		return false
	}
	s.conns[c] = struct{}{}
	s.stats.AcceptedConns++
	return true
}

func (s *HeartbeatServer) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *HeartbeatServer) serveConn(conn net.Conn) {
	r := bufio.NewReaderSize(conn, s.opts.MaxLineBytes)
	for {
		conn.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			s.drop(&s.stats.TooLong, "line too long", fmt.Errorf("over %d bytes", s.opts.MaxLineBytes))
			return
		case err != nil && len(bytes.TrimSpace(line)) == 0:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.drop(&s.stats.Idle, "client silent", fmt.Errorf("nothing for %v", s.opts.IdleTimeout))
			}
			return // EOF or closed
		}
		if len(bytes.TrimSpace(line)) > 0 && !s.handle(bytes.TrimSpace(line)) {
			return
		}
		if err != nil {
			return
		}
	}
}

// handle processes one line and reports whether the connection may go on.
func (s *HeartbeatServer) handle(line []byte) bool {
	m, err := ParseMessage(line)
	if err != nil {
		s.drop(&s.stats.BadLines, "bad heartbeat", err)
		return false
	}
	if s.opts.AgentID != "" && m.AgentID != s.opts.AgentID {
		s.drop(&s.stats.WrongAgent, "heartbeat from another agent", fmt.Errorf("agent_id %q, want %q", m.AgentID, s.opts.AgentID))
		return false
	}
	s.opts.Heartbeat.Beat()
	s.mu.Lock()
	s.last, s.seen = m, true
	s.stats.Lines++
	s.mu.Unlock()
	return true
}

func (s *HeartbeatServer) drop(counter *int64, reason string, err error) {
	s.mu.Lock()
	*counter++
	s.mu.Unlock()
	s.opts.Logger.Info("dropping heartbeat connection", "reason", reason, "error", err.Error(), "socket", s.opts.Path)
}

// Last returns the latest valid heartbeat, and whether there was one.
func (s *HeartbeatServer) Last() (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.seen
}

// Stats returns the counters so far.
func (s *HeartbeatServer) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

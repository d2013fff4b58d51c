package supervisor

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// notifyMessage is one sd_notify datagram, parsed. Fields a message does
// not carry are zero (pointers nil).
type notifyMessage struct {
	ready, reloading, stopping bool
	watchdog, trigger          bool    // WATCHDOG=1, WATCHDOG=trigger
	status                     *string // STATUS=
	mainPID                    int     // MAINPID=, 0 if absent or not a PID
	monotonic                  time.Duration
	extend                     *time.Duration // EXTEND_TIMEOUT_USEC=
	watchdogPeriod             *time.Duration // WATCHDOG_USEC=
	errno                      int            // ERRNO=
	exitStatus                 *int           // EXIT_STATUS=
	fdStore, fdStoreRemove     bool           // FDSTORE=1, FDSTOREREMOVE=1
	fdName                     string         // FDNAME=
}

// parseNotify reads the newline-separated KEY=value assignments of one
// datagram, as systemd does: unknown keys and values that do not parse
// are ignored, the last of a repeated key wins.
func parseNotify(data []byte) notifyMessage {
	var m notifyMessage
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch key {
		case "READY":
			m.ready = value == "1"
		case "RELOADING":
			m.reloading = value == "1"
		case "STOPPING":
			m.stopping = value == "1"
		case "WATCHDOG":
			m.watchdog, m.trigger = value == "1", value == "trigger"
		case "STATUS":
			m.status = &value
		case "MAINPID":
			if pid, err := strconv.Atoi(value); err == nil && pid > 0 {
				m.mainPID = pid
			}
		case "MONOTONIC_USEC":
			if d, ok := parseUSec(value); ok {
				m.monotonic = d
			}
		case "EXTEND_TIMEOUT_USEC":
			if d, ok := parseUSec(value); ok {
				m.extend = &d
			}
		case "WATCHDOG_USEC":
			if d, ok := parseUSec(value); ok {
				m.watchdogPeriod = &d
			}
		case "ERRNO":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 {
				m.errno = n
			}
		case "EXIT_STATUS":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 && n <= 255 {
				m.exitStatus = &n
			}
		case "FDSTORE":
			m.fdStore = value == "1"
		case "FDSTOREREMOVE":
			m.fdStoreRemove = value == "1"
		case "FDNAME":
			m.fdName = value
		}
	}
	return m
}

// parseUSec reads a count of microseconds, saturating at the longest
// Duration.
func parseUSec(s string) (time.Duration, bool) {
	usec, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(min(usec, uint64(math.MaxInt64/1000))) * time.Microsecond, true
}

// notifyState is what the current child has said over its notify socket,
// kept as latest values. The reader goroutine writes it as messages
// arrive and tells the owner through news (one token, never waited on);
// the owner takes a copy when told. Each applied message gets the next
// sequence number, so the owner can tell the order of READY=1 and
// RELOADING=1 without a queue.
type notifyState struct {
	ready     chan struct{} // closed at the child's first READY=1
	readyOnce sync.Once
	news      chan struct{}

	mu sync.Mutex
	notifySnapshot
}

// notifySnapshot is a copy of a notifyState's values.
type notifySnapshot struct {
	seq           uint64 // messages applied
	readySeq      uint64 // seq of the latest READY=1
	reloadingSeq  uint64 // seq of the latest RELOADING=1
	reloadingMono time.Duration
	stopping      bool
	status        *string
	mainPID       int
	triggered     bool
	extendTo      time.Time // what the latest EXTEND_TIMEOUT_USEC= asks a timeout to reach
	watchdog      *time.Duration
	lastKeepalive time.Time
	errno         int
	exitStatus    *int
}

func newNotifyState() *notifyState {
	return &notifyState{ready: make(chan struct{}), news: make(chan struct{}, 1)}
}

// apply records one message from an accepted sender, received at now.
// mainPID is the message's MAINPID= if the sender check allowed it.
func (n *notifyState) apply(m notifyMessage, now time.Time) {
	n.mu.Lock()
	n.seq++
	s := &n.notifySnapshot
	told := true
	switch {
	case m.reloading:
		s.reloadingSeq, s.reloadingMono = s.seq, m.monotonic
	case m.stopping:
		s.stopping = true
	}
	if m.ready {
		s.readySeq = s.seq
	}
	if m.watchdog {
		s.lastKeepalive = now
		told = m.ready || m.reloading || m.stopping || m.status != nil || m.trigger ||
			m.extend != nil || m.watchdogPeriod != nil || m.mainPID != 0 || m.errno != 0 || m.exitStatus != nil
	}
	if m.trigger {
		s.triggered = true
	}
	if m.status != nil {
		s.status = m.status
	}
	if m.mainPID != 0 {
		s.mainPID = m.mainPID
	}
	if m.extend != nil {
		s.extendTo = now.Add(*m.extend)
	}
	if m.watchdogPeriod != nil {
		s.watchdog = m.watchdogPeriod
	}
	if m.errno != 0 {
		s.errno = m.errno
	}
	if m.exitStatus != nil {
		s.exitStatus = m.exitStatus
	}
	n.mu.Unlock()
	if m.ready {
		n.readyOnce.Do(func() { close(n.ready) })
	}
	if told {
		select {
		case n.news <- struct{}{}:
		default: // a token is already there
		}
	}
}

// snapshot copies the current values.
func (n *notifyState) snapshot() notifySnapshot {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.notifySnapshot
}

// keepalive is when the child last sent WATCHDOG=1.
func (n *notifyState) keepalive() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastKeepalive
}

// resetKeepalive counts a watchdog period from now, as at readiness.
func (n *notifyState) resetKeepalive(now time.Time) {
	n.mu.Lock()
	n.lastKeepalive = now
	n.mu.Unlock()
}

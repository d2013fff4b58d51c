//go:build linux

package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/tend-dev/tend/supervisor"
)

// eventLog keeps what the checks need of the Group's events.
type eventLog struct {
	mu       sync.Mutex
	pids     map[int]bool         // every child ever spawned
	restarts []time.Time          // when automatic restarts were planned, for the budget
	planned  map[string]time.Time // by agent: the restart its last Backoff planned
	delays   []delay              // every scheduled restart
	missed   int                  // events dropped for a slow subscriber
	budgeted int                  // restarts the budget delayed
	count    int                  // events in all
	current  map[string]int       // by agent: its child's PID
	ends     map[int]string       // by PID: which agent's child it was and how it ended
}

// delay is one restart the supervisor scheduled after an exit.
type delay struct {
	agent  string
	reason supervisor.Reason
	wait   time.Duration // from the exit to the planned restart
}

func newEventLog() *eventLog {
	return &eventLog{pids: map[int]bool{}, planned: map[string]time.Time{}, current: map[string]int{}, ends: map[int]string{}}
}

func (l *eventLog) add(e supervisor.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	l.missed += e.Missed
	if pid, ok := l.current[e.Name]; ok && e.Status.PID != pid && e.Status.LastExit != nil {
		l.ends[pid] = fmt.Sprintf("%s's child, ended %s (%s) at %s", e.Name, e.Status.LastExit,
			e.Reason, e.Status.LastExit.Time.Format("15:04:05.000"))
		delete(l.current, e.Name)
	}
	if e.To == supervisor.Starting && e.Status.PID > 0 {
		l.pids[e.Status.PID] = true
		l.current[e.Name] = e.Status.PID
		if at, ok := l.planned[e.Name]; ok && e.Reason == supervisor.ReasonBackoffElapsed {
			l.restarts = append(l.restarts, at)
		}
		delete(l.planned, e.Name)
	}
	if e.Reason == supervisor.ReasonRestartBudget {
		l.budgeted++
	}
	if e.To == supervisor.Backoff && !e.Status.NextRestartAt.IsZero() {
		l.planned[e.Name] = e.Status.NextRestartAt
	}
	if e.To == supervisor.Backoff && e.Status.LastExit != nil && e.Reason != supervisor.ReasonRestartBudget && e.Reason != supervisor.ReasonRetryFailed {
		l.delays = append(l.delays, delay{agent: e.Name, reason: e.Reason, wait: e.Status.NextRestartAt.Sub(e.Status.LastExit.Time)})
	}
}

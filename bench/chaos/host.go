//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/internal/testagent"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/supervisor"
)

// The supervision settings every agent gets; the checks hold tend to them.
const (
	backoffMax  = 2 * time.Second
	budgetPer   = 10 * time.Second
	stopTimeout = time.Second
)

// host is the world of one run: a work directory with the agent binary,
// the log disk, the state store, and the Group with its agents.
type host struct {
	dir, bin, logDir, seqDir string
	tmpfs                    bool // logDir is a tmpfs of its own: the disk can be filled

	group   *supervisor.Group
	budget  supervisor.Budget
	agents  []*agent
	store   *supervisor.FileStore
	events  *eventLog
	cancel  context.CancelFunc // ends the heartbeat servers
	serving sync.WaitGroup
}

// agent is one member and what belongs to it.
type agent struct {
	name, behaviour string
	spec            supervisor.Spec
	log             *logs.Rotator
	socket          string // heartbeat socket, for the beaters
}

// behaviours cycle over the agents: each stresses another path.
var behaviours = []struct {
	name string
	args func(a *agent) []string
}{
	{"steady", func(*agent) []string { return nil }},
	{"crasher", func(*agent) []string { return []string{"-after", "3s", "-exit", "1"} }},
	{"forker", func(*agent) []string { return []string{"-fork", "1"} }},
	{"stubborn", func(*agent) []string { return []string{"-ignore-term"} }},
	{"beater", func(a *agent) []string { return []string{"-heartbeat-socket", a.socket, "-heartbeat-id", a.name} }},
}

func newHost(o options) (*host, error) {
	dir, err := os.MkdirTemp("", "tend-chaos-")
	if err != nil {
		return nil, err
	}
	h := &host{dir: dir, logDir: filepath.Join(dir, "logs"), seqDir: filepath.Join(dir, "seq"), events: newEventLog()}
	for _, d := range []string{h.logDir, h.seqDir, filepath.Join(dir, "bin"), filepath.Join(dir, "sockets")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	built, err := testagent.Build(dir)
	if err != nil {
		return nil, err
	}
	h.bin = filepath.Join(dir, "bin", "agent")
	if err := os.Rename(built, h.bin); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tend-chaos", h.logDir).CombinedOutput(); err == nil {
			h.tmpfs = true
		} else {
			fmt.Printf("chaos: no tmpfs for the logs (%v: %s); the disk-full fault is left out\n", err, out)
		}
	}
	if h.store, err = supervisor.NewFileStore(filepath.Join(dir, "state.json")); err != nil {
		return nil, err
	}
	// One restart per agent per window on average: kill storms exceed it,
	// so the budget bites and its bound is put to the test.
	h.budget = supervisor.Budget{Restarts: o.agents, Per: config.Duration(budgetPer)}
	if h.group, err = supervisor.NewGroup(supervisor.GroupOptions{Store: h.store, Budget: h.budget}); err != nil {
		return nil, err
	}
	h.group.Subscribe(h.events.add)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for i := range o.agents {
		a, err := h.addAgent(ctx, i)
		if err != nil {
			return nil, err
		}
		h.agents = append(h.agents, a)
	}
	return h, nil
}

func (h *host) addAgent(ctx context.Context, i int) (*agent, error) {
	b := behaviours[i%len(behaviours)]
	a := &agent{name: fmt.Sprintf("%s-%03d", b.name, i), behaviour: b.name}
	a.socket = filepath.Join(h.dir, "sockets", a.name+".sock")
	var err error
	if a.log, err = logs.New(logs.Options{Path: filepath.Join(h.logDir, a.name+".log"), MaxSizeMB: 1, Compress: true}); err != nil {
		return nil, err
	}
	if b.name == "beater" {
		hb := health.NewHeartbeat(time.Minute)
		srv, err := health.NewHeartbeatServer(health.ServerOptions{Path: a.socket, AgentID: a.name, Heartbeat: hb})
		if err != nil {
			return nil, err
		}
		h.serving.Add(1)
		go func() { defer h.serving.Done(); srv.Serve(ctx) }() //nolint:errcheck // returns nil when ctx ends
	}
	a.spec = supervisor.Spec{
		Name: a.name, Path: h.bin,
		Args:         append([]string{"-seq-dir", h.seqDir, "-every", "20ms", "-hup"}, b.args(a)...),
		StartSeconds: config.Duration(200 * time.Millisecond),
		StopTimeout:  config.Duration(stopTimeout),
		Stdout:       a.log.Stream("stdout"),
		Stderr:       a.log.Stream("stderr"),
		Restart: supervisor.RestartSpec{
			MaxRestarts: 50, RestartWindow: config.Duration(time.Minute),
			RetryFailedAfter: config.Duration(5 * time.Second),
			Backoff:          backoff.Exponential{Initial: 100 * time.Millisecond, Max: backoffMax},
		},
	}
	if _, err := h.group.Add(a.spec); err != nil {
		return nil, err
	}
	return a, nil
}

// leaders returns the PIDs of the agents' current children.
func (h *host) leaders() []int {
	var pids []int
	for _, st := range h.group.List() {
		if st.PID > 0 {
			pids = append(pids, st.PID)
		}
	}
	return pids
}

// close stops what the run started and removes its files; it is called on
// every exit path.
func (h *host) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if h.group != nil {
		h.group.Close(ctx) //nolint:errcheck // the checks already stopped it on the normal path
	}
	for _, a := range h.agents {
		a.log.Close()
	}
	if h.cancel != nil {
		h.cancel()
	}
	h.serving.Wait()
	if h.tmpfs {
		syscall.Unmount(h.logDir, syscall.MNT_DETACH) //nolint:errcheck // best effort at the end
	}
	os.RemoveAll(h.dir)
}

// seqCounts reads how many lines each process wrote at least, by PID.
func (h *host) seqCounts() (map[int]int, error) {
	entries, err := os.ReadDir(h.seqDir)
	if err != nil {
		return nil, err
	}
	counts := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(h.seqDir, e.Name()))
		if err != nil {
			return nil, err
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			counts[pid] = n
		}
	}
	return counts, nil
}

package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/logs"
)

// handoverHostEnv makes the test binary a host that supervises the
// agents of handoverSpecs in the directory it names, hands them over to
// a new copy of itself on SIGUSR2 and closes its Group on SIGTERM. Each
// generation writes DIR/report-GEN.json once its agents are settled.
const handoverHostEnv = "TEND_TEST_HANDOVER_HOST"

func init() { testHosts[handoverHostEnv] = runHandoverHost }

// Settings of the hand-over host, by environment variable.
const (
	hoGen        = "TEND_TEST_GEN"           // this binary's generation, 0 first
	hoAgents     = "TEND_TEST_AGENT_SET"     // which handoverSpecs: "fleet" or "small"
	hoCgroup     = "TEND_TEST_CGROUP_NAME"   // containment name; empty: process groups
	hoBounce     = "TEND_TEST_BOUNCE_GEN"    // this generation hands over again before Apply
	hoVersion    = "TEND_TEST_STATE_VERSION" // the state version to write
	hoWindowKill = "TEND_TEST_WINDOW_KILL"   // the agent to kill in the hand-over window
	hoLosePidfd  = "TEND_TEST_LOSE_PIDFD"    // the agent whose pidfd is closed in the window
	hoExecPath   = "TEND_TEST_EXEC_PATH"     // what to exec instead of this binary
	hoSince      = "TEND_TEST_HANDOVER_AT"   // when the previous binary called Handover, unix ns
	hoBare       = "TEND_TEST_BARE_EXEC"     // no Group: re-exec itself, for the exec's own cost
)

// hostReport is what one generation of the host saw once settled.
type hostReport struct {
	Gen        int         `json:"gen"`
	Result     ApplyResult `json:"result"`
	Agents     []Status    `json:"agents"`
	Goroutines int         `json:"goroutines"`
	FDs        int         `json:"fds"`
	Threads    int         `json:"threads"`
	ProbeInode uint64      `json:"probe_inode"`
	// ResumedIn is from the previous binary's Handover call to this
	// one's Launch returning.
	ResumedIn time.Duration `json:"resumed_in"`
	Error     string        `json:"error,omitempty"`
}

// eventLine is one event as the host's subscriber logged it.
type eventLine struct {
	Gen    int    `json:"gen"`
	Name   string `json:"name"`
	From   State  `json:"from"`
	To     State  `json:"to"`
	Reason Reason `json:"reason"`
	PID    int    `json:"pid"`
	Exit   *Exit  `json:"exit,omitempty"`
}

// handoverSpecs are the host's agents. "fleet": 20 printing numbered
// lines into logs.Rotator streams (half of them in two writes a line), 10
// in a one-hour Backoff, 10 with sd_notify and a watchdog, 9 Stopping
// with an hour to go and one Stopping with 1.5 s, the last two sets
// ignoring SIGTERM. "small": two printers and a notify agent. "special":
// a MAINPID= successor and a ParentDeathSignal agent. "bench-N": one
// printer whose log stamps each line, and N-1 idle agents.
func handoverSpecs(set, agent, dir string) ([]Spec, map[string]*logs.Rotator, error) {
	var specs []Spec
	rotators := map[string]*logs.Rotator{}
	fast := config.Duration(20 * time.Millisecond)
	printers, backoffs, notifiers, stoppers, idle := 20, 10, 10, 10, 0
	var prefix logs.Prefix
	switch {
	case set == "small":
		printers, backoffs, notifiers, stoppers = 2, 0, 1, 0
	case set == "special":
		// A shell that names its background sleep its main process and
		// exits, and an agent with a parent-death signal.
		return []Spec{
			{Name: "mainpid", Path: "/bin/sh", Args: []string{"-c", `sleep 600 & "$SDN" --ready MAINPID=$!; echo $$ > "$0"; exit 0`, filepath.Join(dir, "leader")},
				Env: []string{"SDN=/usr/bin/systemd-notify", "PATH=/usr/bin:/bin"}, NotifyReady: true, Restart: RestartSpec{Policy: RestartNever}},
			{Name: "pdeath", Path: agent, StartSeconds: fast, ParentDeathSignal: Signal(syscall.SIGTERM)},
		}, rotators, nil
	case strings.HasPrefix(set, "bench-"):
		n, _ := strconv.Atoi(strings.TrimPrefix(set, "bench-"))
		printers, backoffs, notifiers, stoppers, idle = 1, 0, 0, 0, n-1
		prefix.Timestamp = time.RFC3339Nano // when each line reached the log
	}
	for i := range idle {
		specs = append(specs, Spec{Name: fmt.Sprintf("idle-%04d", i), Path: agent, StartSeconds: fast})
	}
	for i := range printers {
		name := fmt.Sprintf("print-%02d", i)
		// A printer descheduled mid-line for over a second (a loaded CI
		// machine) would have its line cut by the Stream's timer, hand-over
		// or not: the wait is longer than any such stall here.
		r, err := logs.New(logs.Options{Path: filepath.Join(dir, name+".log"), Prefix: prefix, PartialLineWait: config.Duration(30 * time.Second)})
		if err != nil {
			return nil, nil, err
		}
		rotators[name] = r
		args := []string{"-seq-dir", filepath.Join(dir, "seq"), "-every", "1ms"}
		if i%2 == 1 {
			args = append(args, "-seq-split")
		}
		specs = append(specs, Spec{Name: name, Path: agent, Args: args, Stdout: r.Stream("stdout"), StartSeconds: fast})
	}
	for i := range backoffs {
		specs = append(specs, Spec{Name: fmt.Sprintf("backoff-%02d", i), Path: agent, Args: []string{"-after", "1ms", "-exit", "3"},
			StartSeconds: fast, Restart: RestartSpec{FirstDelay: config.Duration(time.Hour)}})
	}
	for i := range notifiers {
		specs = append(specs, Spec{Name: fmt.Sprintf("notify-%02d", i), Path: agent,
			Args:        []string{"-notify-ready-after", "5ms", "-watchdog-every", "20ms"},
			NotifyReady: true, Watchdog: config.Duration(time.Second)})
	}
	for i := range stoppers {
		timeout := config.Duration(time.Hour)
		if i == 0 {
			timeout = config.Duration(1500 * time.Millisecond)
		}
		// Running only once it surely ignores SIGTERM.
		specs = append(specs, Spec{Name: fmt.Sprintf("stopping-%02d", i), Path: agent, Args: []string{"-ignore-term"},
			StartSeconds: config.Duration(300 * time.Millisecond), StopTimeout: timeout})
	}
	return specs, rotators, nil
}

func runHandoverHost(dir string) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGUSR2, syscall.SIGTERM)
	gen, _ := strconv.Atoi(os.Getenv(hoGen))
	report := hostReport{Gen: gen}
	switch {
	case os.Getenv(hoBare) != "":
		runBareHost(dir, gen, signals)
		return
	case os.Getenv(hoAgents) == "lone":
		runLoneHost(dir, gen, signals)
		return
	}
	fail := func(err error) {
		report.Error = err.Error()
		writeJSON(filepath.Join(dir, fmt.Sprintf("report-%d.json", gen)), report)
		os.Exit(3)
	}
	probe := InheritedFile("probe")
	if probe == nil {
		var w *os.File
		var err error
		if probe, w, err = os.Pipe(); err != nil {
			fail(err)
		}
		defer w.Close()
	}
	events, err := os.OpenFile(filepath.Join(dir, "events.jsonl"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fail(err)
	}
	opts := GroupOptions{Containment: Containment{Name: os.Getenv(hoCgroup), Disabled: os.Getenv(hoCgroup) == ""}}
	if v, err := strconv.Atoi(os.Getenv(hoVersion)); err == nil {
		stateVersion = v
	}
	if path := os.Getenv("TEND_TEST_STORE"); path != "" {
		if opts.Store, err = NewFileStore(path); err != nil {
			fail(err)
		}
	}
	g, err := NewGroup(opts)
	if err != nil {
		fail(err)
	}
	g.Subscribe(func(e Event) {
		line, _ := json.Marshal(eventLine{Gen: gen, Name: e.Name, From: e.From, To: e.To, Reason: e.Reason, PID: e.Status.PID, Exit: e.Status.LastExit})
		events.Write(append(line, '\n')) //nolint:errcheck // the test reads what is there
	})
	handover := func() {
		env := nextGeneration(gen)
		if name := os.Getenv(hoWindowKill); name != "" {
			beforeExec = func() { killInWindow(g, name) }
		}
		if name := os.Getenv(hoLosePidfd); name != "" {
			beforeExec = func() { losePidfd(g, name) }
		}
		err := g.Handover(context.Background(), Exec{Path: os.Getenv(hoExecPath), Env: env, Files: map[string]*os.File{"probe": probe}})
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("handover-error-%d", gen)), []byte(err.Error()), 0o600) //nolint:errcheck // the test looks for it
	}
	if os.Getenv(hoBounce) == strconv.Itoa(gen) {
		handover() // at once, before any Apply claimed the agents
	}
	specs, rotators, err := handoverSpecs(os.Getenv(hoAgents), os.Getenv("TEND_TEST_AGENT"), dir)
	if err != nil {
		fail(err)
	}
	if report.Result, err = g.Launch(context.Background(), specs); err != nil {
		fail(err)
	}
	if at, err := strconv.ParseInt(os.Getenv(hoSince), 10, 64); err == nil {
		report.ResumedIn = time.Since(time.Unix(0, at))
	}
	if gen == 0 {
		for _, s := range specs {
			if strings.HasPrefix(s.Name, "stopping-") {
				waitSettled(g, s.Name, Running)
				go g.Stop(context.Background(), s.Name) //nolint:errcheck // it outlives this binary
			}
		}
	}
	settle(g)
	report.Agents = g.List()
	report.Goroutines, report.FDs, report.Threads = steadyCounts()
	report.ProbeInode = inodeOf(probe)
	writeJSON(filepath.Join(dir, fmt.Sprintf("report-%d.json", gen)), report)

	for sig := range signals {
		if sig == syscall.SIGTERM {
			break
		}
		handover()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.Close(ctx) //nolint:errcheck // the test checks what the agents wrote
	for _, r := range rotators {
		r.Close()
	}
	os.WriteFile(filepath.Join(dir, "closed"), nil, 0o600) //nolint:errcheck // the test waits for the exit
}

// runBareHost is the benchmarks' baseline: a host with nothing to hand
// over that re-execs itself on SIGUSR2, reporting how long from its exec
// call to its main.
func runBareHost(dir string, gen int, signals chan os.Signal) {
	report := hostReport{Gen: gen}
	if at, err := strconv.ParseInt(os.Getenv(hoSince), 10, 64); err == nil {
		report.ResumedIn = time.Since(time.Unix(0, at))
	}
	writeJSON(filepath.Join(dir, fmt.Sprintf("report-%d.json", gen)), report)
	if sig := <-signals; sig == syscall.SIGUSR2 {
		env := nextGeneration(gen)
		exe, _ := os.Executable()
		syscall.Exec(exe, os.Args, env) //nolint:errcheck // the benchmark times out without the next report
	}
}

// runLoneHost supervises one printer with a lone Process (New, Start,
// Process.Handover) instead of a Group.
func runLoneHost(dir string, gen int, signals chan os.Signal) {
	report := hostReport{Gen: gen}
	r, err := logs.New(logs.Options{Path: filepath.Join(dir, "print-00.log"), PartialLineWait: config.Duration(30 * time.Second)}) // see handoverSpecs
	if err != nil {
		os.Exit(3)
	}
	p, err := New(Spec{Name: "print-00", Path: os.Getenv("TEND_TEST_AGENT"), Args: []string{"-seq-dir", filepath.Join(dir, "seq"), "-every", "1ms", "-seq-split"},
		Stdout: r.Stream("stdout"), StartSeconds: config.Duration(20 * time.Millisecond)})
	if err == nil && p.Status().State == Stopped {
		err = p.Start(context.Background())
	}
	if err != nil {
		report.Error = err.Error()
	}
	report.Agents = []Status{p.Status()}
	writeJSON(filepath.Join(dir, fmt.Sprintf("report-%d.json", gen)), report)
	for sig := range signals {
		if sig == syscall.SIGTERM {
			break
		}
		env := nextGeneration(gen)
		p.Handover(context.Background(), Exec{Env: env}) //nolint:errcheck // the test waits for the next report
	}
	p.Stop(context.Background()) //nolint:errcheck // the test checks the log
	r.Close()
}

// settle waits until every agent is where handoverSpecs puts it.
func settle(g *Group) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		settled := true
		for _, st := range g.List() {
			want := map[string]State{"print": Running, "notify": Running, "backoff": Backoff, "stopping": Stopping, "idle": Running, "mainpid": Running, "pdeath": Running}[strings.Split(st.Name, "-")[0]]
			if st.State != want && !(st.Name == "stopping-00" && st.State == Stopped) {
				settled = false
			}
		}
		if settled {
			return
		}
	}
}

func waitSettled(g *Group, name string, want State) {
	p, _ := g.Get(name)
	for deadline := time.Now().Add(10 * time.Second); p.Status().State != want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

// killInWindow SIGTERMs the agent while its supervision is paused and
// waits until it is a zombie: its exit is the next binary's to report.
func killInWindow(g *Group, name string) {
	p, _ := g.Get(name)
	pid := p.Status().PID
	syscall.Kill(pid, syscall.SIGTERM) //nolint:errcheck // the test checks the exit it reports
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(data), ") Z ") {
			return
		}
	}
}

// losePidfd closes the agent's pidfd while its owner is paused: the next
// binary cannot prove the child is the one handed over.
func losePidfd(g *Group, name string) {
	p, _ := g.Get(name)
	p.mu.Lock()
	l := p.active
	p.mu.Unlock()
	syscall.Close(fdOf(l.cur.child.h.pidfd)) //nolint:errcheck // the point
}

// nextGeneration is the environment of the binary generation gen hands
// over to: its number, and when the hand-over began.
func nextGeneration(gen int) []string {
	return append(withoutVar(withoutVar(os.Environ(), hoGen), hoSince),
		hoGen+"="+strconv.Itoa(gen+1), hoSince+"="+strconv.FormatInt(time.Now().UnixNano(), 10))
}

func writeJSON(path string, v any) {
	data, _ := json.Marshal(v)
	os.WriteFile(path+".tmp", data, 0o600) //nolint:errcheck // the test times out on a missing report
	os.Rename(path+".tmp", path)           //nolint:errcheck // as above
}

// steadyCounts samples the host's goroutines, descriptors and threads
// for 100 ms and keeps the commonest value of each: what it holds,
// without what comes and goes (an event delivery, a flush timer, a log
// file reopened).
func steadyCounts() (goroutines, fds, threads int) {
	var g, f, th []int
	for range 21 {
		g, f, th = append(g, runtime.NumGoroutine()), append(f, countFDs()), append(th, countThreads())
		time.Sleep(5 * time.Millisecond)
	}
	return commonest(g), commonest(f), commonest(th)
}

func commonest(xs []int) int {
	count := map[int]int{}
	best := xs[0]
	for _, x := range xs {
		count[x]++
		if count[x] > count[best] {
			best = x
		}
	}
	return best
}

func countFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries) - 1 // the directory's own
}

func countThreads() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func inodeOf(f *os.File) uint64 {
	var st syscall.Stat_t
	if f == nil || syscall.Fstat(fdOf(f), &st) != nil {
		return 0
	}
	return st.Ino
}

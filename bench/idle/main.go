//go:build linux

// Command idle measures what N idle supervised agents cost their host:
// OS threads, RSS, RSS per agent, CPU time over a window, and start/stop
// wall time, for tend's supervisor.Group and for a bare exec.Cmd loop (one
// goroutine blocked in Wait per child), each in a fresh process of its own,
// in the same run.
//
//	go run ./bench/idle -n 100,1000,5000 -window 60s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tend-dev/tend/internal/procfs"
	"github.com/tend-dev/tend/supervisor"
	"golang.org/x/sys/unix"
)

// result is what one measured process reports.
type result struct {
	Mode        string  `json:"mode"`
	N           int     `json:"n"`
	Threads     int     `json:"threads"`
	RSSKiB      int64   `json:"rss_kib"`
	PerAgentKiB float64 `json:"per_agent_kib"`
	CPUms       float64 `json:"cpu_ms"`
	StartMs     float64 `json:"start_ms"`
	StopMs      float64 `json:"stop_ms"`
	FDs         int     `json:"fds"`     // open descriptors while the agents idle
	Inotify     int     `json:"inotify"` // of which inotify instances
}

func main() {
	ns := flag.String("n", "100,1000,5000", "agent counts, comma separated")
	window := flag.Duration("window", 60*time.Second, "how long the agents idle while CPU time is measured")
	mode := flag.String("mode", "", "internal: measure one mode in this process")
	tail := flag.Bool("tail", false, "keep tend's crash tail, which pipes each agent's stdout and stderr")
	flag.Parse()
	if *mode != "" {
		n, _ := strconv.Atoi(*ns)
		r, err := measure(*mode, n, *window, *tail)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	// Agents orphaned by a measuring process that died (a fatal error
	// cannot be recovered from) are reparented here, and killed below.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "cannot become a subreaper; a crashed run may leave agents behind:", err)
	}
	fmt.Printf("| N | mode | host threads | host RSS | RSS per agent | host fds (inotify) | host CPU over %v | start all | stop all |\n", *window)
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, field := range strings.Split(*ns, ",") {
		for _, m := range []string{"bare", "tend", "tend-cgroup"} {
			r, err := runMode(m, field, *window, *tail)
			killOrphans()
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s n=%s: %v\n", m, field, err)
				os.Exit(1)
			}
			fmt.Printf("| %d | %s | %d | %.1f MiB | %.1f KiB | %d (%d) | %.0f ms | %.0f ms | %.0f ms |\n",
				r.N, r.Mode, r.Threads, float64(r.RSSKiB)/1024, r.PerAgentKiB, r.FDs, r.Inotify, r.CPUms, r.StartMs, r.StopMs)
		}
	}
}

// runMode re-executes this program to measure one mode in a clean process.
func runMode(mode, n string, window time.Duration, tail bool) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	var out bytes.Buffer
	cmd := exec.Command(self, "-mode", mode, "-n", n, "-window", window.String(), "-tail="+strconv.FormatBool(tail))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, err
	}
	var r result
	return r, json.Unmarshal(out.Bytes(), &r)
}

func measure(mode string, n int, window time.Duration, tail bool) (result, error) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return result{}, err
	}
	runtime.GC()
	rss0 := rssKiB()
	r := result{Mode: mode, N: n}
	var stop func() error
	t0 := time.Now()
	switch mode {
	case "tend":
		stop, err = startTend(sleep, n, tail, supervisor.Containment{Disabled: true})
	case "tend-cgroup":
		stop, err = startTend(sleep, n, tail, supervisor.Containment{})
	case "bare":
		stop, err = startBare(sleep, n)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return r, err
	}
	r.StartMs = ms(time.Since(t0))
	// Ctrl-C reaches this process (the agents are in groups of their
	// own): stop them before leaving.
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupted)
	idle := time.NewTimer(time.Second + window) // a second for start-up work to finish, then the window
	defer idle.Stop()
	time.Sleep(time.Second)
	cpu0 := cpuTime()
	select {
	case <-idle.C:
	case sig := <-interrupted:
		return r, errors.Join(fmt.Errorf("interrupted by %v", sig), stop())
	}
	r.CPUms = ms(cpuTime() - cpu0)
	runtime.GC()
	r.Threads, r.RSSKiB = threadCount(), rssKiB()
	r.FDs, r.Inotify = openFDs()
	r.PerAgentKiB = float64(r.RSSKiB-rss0) / float64(n)
	t1 := time.Now()
	if err := stop(); err != nil {
		return r, err
	}
	r.StopMs = ms(time.Since(t1))
	return r, nil
}

// startTend runs n agents in a Group: in process groups, or in cgroups
// (where this host may create them: the mode fails otherwise).
func startTend(sleep string, n int, tail bool, contain supervisor.Containment) (func() error, error) {
	tailBytes := -1
	if tail {
		tailBytes = 0 // the default crash tail
	}
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: contain})
	if err != nil {
		return nil, err
	}
	if _, err := g.CgroupParent(); err != nil && !contain.Disabled {
		return nil, errors.Join(err, g.Close(context.Background()))
	}
	for i := range n {
		if _, err := g.Add(supervisor.Spec{Name: fmt.Sprintf("agent-%d", i), Path: sleep,
			Args: []string{"1000000"}, StartSeconds: 1, TailBytes: tailBytes}); err != nil {
			return nil, err
		}
	}
	stop := func() error { return g.Close(context.Background()) }
	if err := g.StartAll(context.Background()); err != nil {
		return nil, errors.Join(err, stop()) // leave none of those that started behind
	}
	return stop, nil
}

// startBare is the hand-rolled loop tend replaces: Start each child and
// keep a goroutine blocked in Wait for it.
func startBare(sleep string, n int) (func() error, error) {
	// A blocked Wait holds a thread per child: past 10,000 children the
	// Go runtime's default thread limit would end the program.
	debug.SetMaxThreads(max(10000, 2*n+100))
	var cmds []*exec.Cmd
	done := make(chan struct{}, n)
	stop := func() error {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
		for range cmds {
			<-done
		}
		return nil
	}
	for range n {
		cmd := exec.Command(sleep, "1000000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			return nil, errors.Join(err, stop()) // leave none of those that started behind
		}
		cmds = append(cmds, cmd)
		go func() { cmd.Wait(); done <- struct{}{} }()
	}
	return stop, nil
}

// killOrphans kills and reaps every child of this process left after a
// measuring process ended: agents it orphaned, reparented to us.
func killOrphans() {
	orphans, _ := procfs.Find(func(_ int, st procfs.Stat) bool { return st.PPID == os.Getpid() })
	for _, pid := range orphans {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func statusField(name string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

func rssKiB() int64    { return statusField("VmRSS") }
func threadCount() int { return int(statusField("Threads")) }

// openFDs counts this process's open descriptors, and the inotify
// instances among them.
func openFDs() (fds, inotify int) {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target == "anon_inode:inotify" {
			inotify++
		}
	}
	return len(entries), inotify
}

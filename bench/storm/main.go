// Command storm measures exit-to-restart latency under a crash storm: N
// agents that each exit a period after they start, restarted at once,
// supervised by tend's Group and by a bare loop (a goroutine per agent
// running exec.Cmd.Run in a loop), each in a fresh process of its own, in
// the same run. The latency is what the agents themselves see: each writes
// the time just before it exits, and its successor notes how long ago that
// was when it starts, so the wait between the kernel reporting the exit and
// the supervisor acting on it is included.
//
//	go run ./bench/storm -n 1000 -period 1s -duration 20s
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/trace"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/testagent"
	"github.com/tend-dev/tend/supervisor"
)

// result is what one measured process reports.
type result struct {
	Mode     string          `json:"mode"`
	N        int             `json:"n"`
	Restarts int             `json:"restarts"`
	P50      time.Duration   `json:"p50"`
	P90      time.Duration   `json:"p90"`
	P99      time.Duration   `json:"p99"`
	Max      time.Duration   `json:"max"`
	OverSec  int             `json:"over_1s"`
	Threads  int             `json:"threads"`
	CPU      time.Duration   `json:"cpu"` // the host's user+system time during the storm
	Lat      []time.Duration `json:"-"`
}

func main() {
	n := flag.Int("n", 1000, "agents")
	period := flag.Duration("period", time.Second, "how long each agent runs before it exits")
	duration := flag.Duration("duration", 20*time.Second, "how long the storm lasts")
	mode := flag.String("mode", "", "internal: measure one mode in this process")
	agent := flag.String("agent", "", "internal: the agent binary")
	tail := flag.Bool("tail", false, "keep tend's crash tail, which pipes each agent's output")
	rounds := flag.Int("rounds", 3, "measure bare and tend alternately this many times; the median ratio is reported")
	traceFile := flag.String("trace", "", "with -mode: write an execution trace of the storm here")
	flag.Parse()
	if *mode != "" {
		if *traceFile != "" {
			f, err := os.Create(*traceFile)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			trace.Start(f)
			defer func() { trace.Stop(); f.Close() }()
		}
		r, err := measure(*mode, *agent, *n, *period, *duration, *tail)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1) //nolint:gocritic // the trace of a failed run is of no use
		}
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	dir, err := os.MkdirTemp("", "tend-storm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	bin, err := testagent.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("| round | mode | agents | restarts | p50 | p90 | p99 | max | over 1 s | host threads | host CPU per restart |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	var ratios []float64
	for round := 1; round <= *rounds; round++ {
		results := map[string]result{}
		for _, m := range []string{"bare", "tend"} {
			r, err := runMode(m, bin, *n, *period, *duration, *tail)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", m, err)
				os.Exit(1)
			}
			results[m] = r
			fmt.Printf("| %d | %s | %d | %d | %v | %v | %v | %v | %d | %d | %v |\n", round, r.Mode, r.N, r.Restarts,
				r.P50.Round(time.Millisecond), r.P90.Round(time.Millisecond), r.P99.Round(time.Millisecond), r.Max.Round(time.Millisecond),
				r.OverSec, r.Threads, (r.CPU / time.Duration(max(r.Restarts, 1))).Round(time.Microsecond))
		}
		ratios = append(ratios, float64(results["tend"].P99)/float64(results["bare"].P99))
	}
	slices.Sort(ratios)
	fmt.Printf("p99 tend/bare by round (sorted): %.2f; median %.2f\n", ratios, ratios[len(ratios)/2])
}

// runMode re-executes this program to measure one mode in a clean process.
func runMode(mode, bin string, n int, period, duration time.Duration, tail bool) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	var out bytes.Buffer
	cmd := exec.Command(self, "-mode", mode, "-agent", bin, "-n", strconv.Itoa(n), "-period", period.String(),
		"-duration", duration.String(), "-tail="+strconv.FormatBool(tail))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, err
	}
	var r result
	return r, json.Unmarshal(out.Bytes(), &r)
}

func measure(mode, bin string, n int, period, duration time.Duration, tail bool) (result, error) {
	dir, err := os.MkdirTemp("", "tend-storm-"+mode+"-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	args := func(i int) []string {
		return []string{"-after", period.String(), "-exit", "1", "-restart-stamp", filepath.Join(dir, strconv.Itoa(i))}
	}
	var stop func() error
	switch mode {
	case "tend":
		stop, err = stormTend(bin, n, args, tail)
	case "bare":
		stop, err = stormBare(bin, n, args)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return result{}, err
	}
	cpu0 := cpuTime()
	time.Sleep(duration)
	r := result{Mode: mode, N: n, Threads: threadCount(), CPU: cpuTime() - cpu0}
	if err := stop(); err != nil {
		return r, err
	}
	for i := range n {
		lat, err := readLatencies(filepath.Join(dir, strconv.Itoa(i)+".lat"))
		if err != nil {
			return r, err
		}
		r.Lat = append(r.Lat, lat...)
	}
	r.summarise()
	return r, nil
}

func stormTend(bin string, n int, args func(int) []string, tail bool) (func() error, error) {
	tailBytes := -1
	if tail {
		tailBytes = 0
	}
	g, err := supervisor.NewGroup(supervisor.GroupOptions{})
	if err != nil {
		return nil, err
	}
	for i := range n {
		if _, err := g.Add(supervisor.Spec{Name: fmt.Sprintf("agent-%d", i), Path: bin, Args: args(i),
			StartSeconds: config.Duration(10 * time.Millisecond), TailBytes: tailBytes,
			Restart: supervisor.RestartSpec{MaxRestarts: -1, Backoff: backoff.None()}}); err != nil {
			return nil, err
		}
	}
	stop := func() error { return g.Close(context.Background()) }
	if err := g.StartAll(context.Background()); err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}

// stormBare is the hand-rolled loop: a goroutine per agent that runs it
// again as soon as it exits.
func stormBare(bin string, n int, args func(int) []string) (func() error, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				cmd := exec.CommandContext(ctx, bin, args(i)...)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				cmd.Run() //nolint:errcheck // it exits 1 by design
			}
		}()
	}
	return func() error { cancel(); wg.Wait(); return nil }, nil
}

func readLatencies(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ns, err := strconv.ParseInt(sc.Text(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, time.Duration(ns))
	}
	return out, sc.Err()
}

func (r *result) summarise() {
	slices.Sort(r.Lat)
	r.Restarts = len(r.Lat)
	if r.Restarts == 0 {
		return
	}
	at := func(q float64) time.Duration { return r.Lat[min(len(r.Lat)-1, int(q*float64(len(r.Lat))))] }
	r.P50, r.P90, r.P99, r.Max = at(0.5), at(0.9), at(0.99), r.Lat[len(r.Lat)-1]
	for _, l := range r.Lat {
		if l > time.Second {
			r.OverSec++
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func threadCount() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			n, _ := strconv.Atoi(string(bytes.TrimSpace(rest)))
			return n
		}
	}
	return 0
}

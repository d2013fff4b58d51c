//go:build linux

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/procfs"
	"github.com/tend-dev/tend/supervisor"
)

// callSlack is how far past its deadline a call may return before it
// counts as late: the Go scheduler on two loaded cores, not tend.
const callSlack = 100 * time.Millisecond

// injector draws faults from its seeded source and records what the
// checks need: windows when lines may be lost as documented, and calls.
type injector struct {
	h   *host
	rnd *rand.Rand

	mu       sync.Mutex
	counts   map[string]int
	windows  []window // disk full or descriptors used up
	calls    int
	late     []string // calls that returned past deadline + callSlack
	maxLate  time.Duration
	rejected int // Applies refused while the binary was gone: the documented answer
	wg       sync.WaitGroup
}

// watchWriteErrors adds a window for every span in which an agent's
// Rotator counted write errors (a disk full of logs, a rotation without a
// descriptor): the documented drops. It returns when stop is closed.
func (in *injector) watchWriteErrors(stop <-chan struct{}) {
	errs := make([]int64, len(in.h.agents))
	last := time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		for i, a := range in.h.agents {
			st := a.log.Stats()
			if st.Errors > errs[i] {
				errs[i] = st.Errors
				in.addWindow("write errors: "+st.LastError.Error(), last, now)
			}
		}
		last = now
	}
}

// window is a span when writes may fail as documented.
type window struct {
	what       string
	start, end time.Time
}

type fault struct {
	name   string
	weight int
	run    func(*injector)
}

func (in *injector) faults() []fault {
	list := []fault{
		{"kill agent", 20, (*injector).killAgent},
		{"stop agent", 8, (*injector).stopAgent},
		{"kill grandchild", 8, (*injector).killGrandchild},
		{"kill group", 8, (*injector).killGroup},
		{"kill storm", 2, (*injector).killStorm},
		{"remove binary", 2, (*injector).removeBinary},
		{"racing calls", 15, (*injector).racingCalls},
		{"apply", 6, (*injector).apply},
		{"descriptors out", 2, (*injector).exhaustDescriptors},
		{"heartbeat garbage", 6, (*injector).heartbeatGarbage},
	}
	if in.h.tmpfs {
		list = append(list, fault{"disk full", 2, (*injector).diskFull})
	}
	return list
}

// inject runs faults at random intervals until the duration is over, and
// waits for the ones still under way.
func (in *injector) inject(d time.Duration, mean time.Duration) {
	list := in.faults()
	total := 0
	for _, f := range list {
		total += f.weight
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(time.Duration(in.rnd.ExpFloat64() * float64(mean)))
		pick := in.rnd.IntN(total)
		for _, f := range list {
			if pick -= f.weight; pick < 0 {
				in.count(f.name)
				f.run(in)
				break
			}
		}
	}
	in.wg.Wait()
}

func (in *injector) count(name string) {
	in.mu.Lock()
	in.counts[name]++
	in.mu.Unlock()
}

// later runs fn after d on a goroutine inject waits for.
func (in *injector) later(d time.Duration, fn func()) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		time.Sleep(d)
		fn()
	}()
}

func (in *injector) pick() *agent { return in.h.agents[in.rnd.IntN(len(in.h.agents))] }

func (in *injector) pid(a *agent) int {
	p, _ := in.h.group.Get(a.name)
	return p.Status().PID
}

func (in *injector) killAgent() {
	if pid := in.pid(in.pick()); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (in *injector) stopAgent() {
	if pid := in.pid(in.pick()); pid > 0 {
		syscall.Kill(pid, syscall.SIGSTOP)
		in.later(time.Duration(500+in.rnd.IntN(1500))*time.Millisecond, func() { syscall.Kill(pid, syscall.SIGCONT) })
	}
}

// killGrandchild kills a member of a forker's group other than its leader.
func (in *injector) killGrandchild() {
	for range 5 {
		a := in.pick()
		if a.behaviour != "forker" {
			continue
		}
		pgid := in.pid(a)
		for _, pid := range groupMembers(pgid) {
			if pid != pgid {
				syscall.Kill(pid, syscall.SIGKILL)
				return
			}
		}
	}
}

func (in *injector) killGroup() {
	if pid := in.pid(in.pick()); pid > 0 {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}

func (in *injector) killStorm() {
	for _, pid := range in.h.leaders() {
		if in.rnd.IntN(5) == 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeBinary takes the agent binary away for a while, as a package
// upgrade does: restarts fail meanwhile.
func (in *injector) removeBinary() {
	gone := in.h.bin + ".gone"
	if os.Rename(in.h.bin, gone) != nil {
		return
	}
	in.later(time.Duration(500+in.rnd.IntN(2000))*time.Millisecond, func() { os.Rename(gone, in.h.bin) })
}

// racingCalls fires API calls at random agents from several goroutines,
// each under a deadline, and records the ones that overran it.
func (in *injector) racingCalls() {
	for range 1 + in.rnd.IntN(8) {
		a, op, d := in.pick(), in.rnd.IntN(5), time.Duration(200+in.rnd.IntN(2800))*time.Millisecond
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			deadline, _ := ctx.Deadline()
			name := [...]string{"Start", "Stop", "Restart", "Reload", "Signal"}[op]
			g := in.h.group
			switch op {
			case 0:
				g.Start(ctx, a.name) //nolint:errcheck // any answer is fine; the timing is checked
			case 1:
				g.Stop(ctx, a.name) //nolint:errcheck // as above
			case 2:
				g.Restart(ctx, a.name) //nolint:errcheck // as above
			case 3:
				g.Reload(ctx, a.name) //nolint:errcheck // as above
			case 4:
				if p, ok := g.Get(a.name); ok {
					p.Signal(syscall.SIGHUP) //nolint:errcheck // as above
				}
			}
			in.call(name+" "+a.name, deadline)
		}()
	}
}

// call records a call that returned now with the given deadline.
func (in *injector) call(what string, deadline time.Time) {
	over := time.Since(deadline)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls++
	in.maxLate = max(in.maxLate, over)
	if over > callSlack {
		in.late = append(in.late, fmt.Sprintf("%s %v late", what, over.Round(time.Millisecond)))
	}
}

// apply changes supervision settings of some agents (kept in place) and
// the arguments of one (restarted), under a deadline.
func (in *injector) apply() {
	specs := make([]supervisor.Spec, len(in.h.agents))
	for i, a := range in.h.agents {
		specs[i] = a.spec
		specs[i].StopTimeout = config.Duration(time.Duration(500+in.rnd.IntN(1000)) * time.Millisecond)
	}
	changed := in.rnd.IntN(len(specs))
	specs[changed].Args = append(append([]string(nil), specs[changed].Args...), "-text", fmt.Sprint(in.rnd.Int()))
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		deadline, _ := ctx.Deadline()
		_, err := in.h.group.Apply(ctx, specs)
		in.call("Apply", deadline)
		if err != nil && strings.Contains(err.Error(), "nothing changed") {
			in.mu.Lock()
			in.rejected++
			in.mu.Unlock()
		}
	}()
}

// diskFull fills the log tmpfs for a while.
func (in *injector) diskFull() {
	ballast := in.h.logDir + "/ballast"
	f, err := os.Create(ballast)
	if err != nil {
		return
	}
	start := time.Now()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	d := time.Duration(500+in.rnd.IntN(1500)) * time.Millisecond
	in.later(d, func() {
		os.Remove(ballast)
		in.addWindow("disk full", start, time.Now())
	})
}

// exhaustDescriptors lowers the host's open-files limit to what is open
// for a moment: every open, pipe and socket fails meanwhile.
func (in *injector) exhaustDescriptors() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	low := lim
	low.Cur = uint64(len(open))
	start := time.Now()
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low) != nil {
		return
	}
	time.Sleep(time.Duration(100+in.rnd.IntN(400)) * time.Millisecond)
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	in.addWindow("descriptors out", start, time.Now())
}

func (in *injector) addWindow(what string, start, end time.Time) {
	in.mu.Lock()
	in.windows = append(in.windows, window{what, start, end})
	in.mu.Unlock()
}

// heartbeatGarbage sends a beater's server junk, an oversized line or a
// wrong agent_id.
func (in *injector) heartbeatGarbage() {
	for range 5 {
		a := in.pick()
		if a.behaviour != "beater" {
			continue
		}
		c, err := net.DialTimeout("unix", a.socket, time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(time.Second))
		switch in.rnd.IntN(3) {
		case 0:
			c.Write([]byte("{not json\n"))
		case 1:
			c.Write([]byte(strings.Repeat("x", 10000) + "\n"))
		case 2:
			c.Write([]byte(`{"agent_id":"someone-else","status":"running"}` + "\n"))
		}
		return
	}
}

// groupMembers lists the live processes of group pgid.
func groupMembers(pgid int) []int {
	if pgid <= 0 {
		return nil
	}
	out, _ := procfs.Find(func(_ int, st procfs.Stat) bool { return st.PGRP == pgid && st.Live() })
	return out
}

//go:build linux

// Command chaos hosts a Group of agents of several behaviours, injects
// random faults drawn from a printed seed (SIGKILL and SIGSTOP of agents,
// grandchildren and whole groups, kill storms, the binary removed, API
// calls racing each other under deadlines, Apply changing settings, the
// log disk full, the host out of file descriptors, heartbeat sockets fed
// garbage), then stops everything and checks tend's promises as figures:
// orphans, zombies, goroutines, lost lines, calls past their deadline,
// backoff ceilings and the restart budget, and the host's RSS, threads and
// descriptors over time. It exits 1 when a promise broke.
//
//	go run ./bench/chaos -duration 10m -agents 100
//	go run ./bench/chaos -duration 1m -agents 30 -seed 7   # replay a run
//
// The log disk is a tmpfs mounted for the run when it runs as root;
// otherwise the disk-full fault is left out.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	var o options
	flag.Int64Var(&o.seed, "seed", time.Now().UnixNano(), "seed of the fault schedule (printed, to replay a run)")
	flag.DurationVar(&o.duration, "duration", time.Minute, "how long faults are injected")
	flag.IntVar(&o.agents, "agents", 30, "agents in the Group")
	flag.DurationVar(&o.faultEvery, "fault-every", 500*time.Millisecond, "mean time between faults")
	flag.Parse()
	fmt.Printf("chaos: seed %d, %d agents, %v of faults every %v on average\n", o.seed, o.agents, o.duration, o.faultEvery)
	r, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	r.print(os.Stdout)
	if broken := r.broken(); len(broken) > 0 {
		fmt.Printf("chaos: BROKEN: %v (seed %d)\n", broken, o.seed)
		os.Exit(1)
	}
	fmt.Println("chaos: every promise held")
}

type options struct {
	seed       int64
	duration   time.Duration
	agents     int
	faultEvery time.Duration
}

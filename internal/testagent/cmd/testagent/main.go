// Command testagent is a scriptable stand-in for a real agent, used by tend's
// tests and examples. Every behaviour a supervisor must cope with is a flag:
// exiting with a code after a while, ignoring SIGTERM, forking grandchildren
// (which may ignore SIGTERM too), printing lines at a rate, answering SIGHUP,
// and writing PIDs to files so tests can check the OS, not tend's view of it.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"github.com/coreos/go-systemd/v22/daemon"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		exitCode    = flag.Int("exit", 0, "exit code to use when -after elapses")
		after       = flag.Duration("after", 0, "exit after this long (0: run until signalled)")
		ignoreTerm  = flag.Bool("ignore-term", false, "ignore SIGTERM")
		fork        = flag.Int("fork", 0, "number of grandchildren to fork; they sleep forever")
		grandIgnore = flag.Bool("grandchild-ignore-term", false, "grandchildren ignore SIGTERM")
		lines       = flag.Int("lines", 0, "number of lines to print to stdout")
		errLines    = flag.Int("stderr-lines", 0, "number of lines to print to stderr")
		every       = flag.Duration("every", 0, "pause between printed lines")
		text        = flag.String("text", "line", "prefix of printed lines")
		hup         = flag.Bool("hup", false, "print \"reloaded\" on SIGHUP instead of dying")
		pidFile     = flag.String("pidfile", "", "write own PID to this file")
		grandFile   = flag.String("grandpids", "", "write grandchild PIDs, one a line, to this file")
		envName     = flag.String("print-env", "", "print the value of this environment variable")
		printWd     = flag.Bool("print-wd", false, "print the working directory")
		printIDs    = flag.Bool("print-ids", false, "print uid, gid and supplementary groups")
		crashBig    = flag.Int("crash-output", 0, "before exiting, print this many bytes to stderr")
		termDelay   = flag.Duration("term-delay", 0, "on SIGTERM, take this long to shut down")
		spin        = flag.Bool("spin", false, "keep one core busy")
		allocMB     = flag.Int("alloc-mb", 0, "allocate and touch this many MiB at start")
		hbSocket    = flag.String("heartbeat-socket", "", "send heartbeats to this Unix socket")
		hbEvery     = flag.Duration("heartbeat-every", 100*time.Millisecond, "heartbeat interval")
		hbID        = flag.String("heartbeat-id", "agent", "agent_id in heartbeats")
		hbStop      = flag.Duration("heartbeat-stop-after", 0, "stop sending heartbeats after this long (0: never)")
		notifyAfter = flag.Duration("notify-ready-after", -1, "send READY=1 to $NOTIFY_SOCKET after this long (negative: never)")
		dogEvery    = flag.Duration("watchdog-every", 0, "after READY=1, send WATCHDOG=1 this often")
		dogStop     = flag.Duration("watchdog-stop-after", 0, "stop sending WATCHDOG=1 after this long (0: never)")
		printReady  = flag.Bool("print-ready-time", false, "print \"ready-sent UNIXNANO\" just before sending READY=1")
		statuses    = flag.Int("notify-statuses", 0, "after READY=1, send this many STATUS= messages as fast as the socket takes them, then print \"sent N statuses\"")
		configFile  = flag.String("config", "", "load this file at start and on SIGHUP; exit 3 unless it holds \"valid: true\"")
		stamp       = flag.String("restart-stamp", "", "when -after elapses, write the time to this file just before exiting; at start, append the time since the stamp a previous run left (the exit-to-restart latency, in ns) to FILE.lat")
		times       = flag.String("times", "", "append \"start\", \"ready\" (just before READY=1), \"term\" (on SIGTERM) and \"exit\" lines with the UNIXNANO time to this file")
		seqSplit    = flag.Bool("seq-split", false, "with -seq-dir, write each line in two writes, -every apart, so a reader often holds half a line")
		seqDir      = flag.String("seq-dir", "", "print \"seq PID N UNIXNANO\" lines to stdout every -every (10ms if unset) for as long as it runs, recording after each the N last written in DIR/PID; grandchildren do the same on the same stdout")
	)
	flag.Parse()
	if runSystemd() {
		return
	}
	// tell sends state over NOTIFY_SOCKET when the supervisor listens
	// (-notify-ready-after).
	tell := func(state string) {
		if *notifyAfter >= 0 {
			daemon.SdNotify(false, state) //nolint:errcheck // the supervisor's answer is what tests check
		}
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if !*hup {
		signal.Reset(syscall.SIGHUP)
	}
	writeFile(*pidFile, strconv.Itoa(os.Getpid())+"\n")
	appendTime(*times, "start")
	recordRestartLatency(*stamp)
	loadConfig(*configFile)
	if *fork > 0 {
		forkGrandchildren(*fork, *grandIgnore, *grandFile, *seqDir, *every)
	}
	if *seqDir != "" {
		go writeSequence(*seqDir, cmp.Or(*every, 10*time.Millisecond), *seqSplit)
	}
	if *envName != "" {
		fmt.Printf("%s=%s\n", *envName, os.Getenv(*envName))
	}
	if *printWd {
		wd, _ := os.Getwd()
		fmt.Println("wd=" + wd)
	}
	if *printIDs {
		groups, _ := syscall.Getgroups()
		fmt.Printf("uid=%d gid=%d groups=%v\n", os.Getuid(), os.Getgid(), groups)
	}
	if *spin {
		go func() {
			for x := 0; ; x++ {
				_ = x * x
			}
		}()
	}
	if *allocMB > 0 {
		ballast = make([]byte, *allocMB<<20)
		for i := range ballast {
			ballast[i] = byte(i)
		}
	}
	if *notifyAfter >= 0 {
		go func() {
			time.Sleep(*notifyAfter)
			c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
			if err != nil {
				fail(err)
			}
			defer c.Close()
			if *printReady {
				fmt.Printf("ready-sent %d\n", time.Now().UnixNano())
			}
			appendTime(*times, "ready")
			c.Write([]byte("STATUS=warming up\nREADY=1"))
			for i := 1; i <= *statuses; i++ {
				if _, err := c.Write([]byte("STATUS=working " + strconv.Itoa(i))); err != nil {
					fail(err)
				}
			}
			if *statuses > 0 {
				fmt.Printf("sent %d statuses\n", *statuses)
			}
			for start := time.Now(); *dogEvery > 0 && (*dogStop == 0 || time.Since(start) < *dogStop); {
				time.Sleep(*dogEvery)
				c.Write([]byte("WATCHDOG=1"))
			}
		}()
	}
	if *hbSocket != "" {
		go heartbeat(*hbSocket, *hbID, *hbEvery, *hbStop)
	}
	for i := 1; i <= max(*lines, *errLines); i++ {
		if i <= *lines {
			fmt.Printf("%s %d\n", *text, i)
		}
		if i <= *errLines {
			fmt.Fprintf(os.Stderr, "%s err %d\n", *text, i)
		}
		if *every > 0 {
			time.Sleep(*every)
		}
	}

	var deadline <-chan time.Time
	if *after > 0 {
		deadline = time.After(*after)
	}
	for {
		select {
		case <-deadline:
			writeFile(*stamp, strconv.FormatInt(time.Now().UnixNano(), 10))
			appendTime(*times, "exit")
			if *crashBig > 0 {
				os.Stderr.WriteString(strings.Repeat("x", *crashBig-len("crash\n")) + "crash\n")
			}
			os.Exit(*exitCode)
		case s := <-signals:
			switch s {
			case syscall.SIGHUP:
				// With a notify socket the reload is told the systemd way:
				// RELOADING=1 first, READY=1 once the config is in.
				tell("RELOADING=1\n" + daemon.SdNotifyMonotonicUsec())
				loadConfig(*configFile)
				fmt.Println("reloaded")
				tell("READY=1")
			case syscall.SIGTERM:
				appendTime(*times, "term")
				if !*ignoreTerm {
					fmt.Println("terminating")
					time.Sleep(*termDelay)
					os.Exit(0)
				}
			}
		}
	}
}

// appendTime appends "what UNIXNANO" to path, if set: the agent's own
// account of when things happened, for tests of ordering.
func appendTime(path, what string) {
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(f, "%s %d\n", what, time.Now().UnixNano())
	f.Close()
}

// loadConfig stands in for an agent reading its config: a config without
// "valid: true" makes it exit 3, as a real agent dies on a broken config.
func loadConfig(path string) {
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), "valid: true") {
		fmt.Fprintf(os.Stderr, "testagent: bad config %s\n", path)
		os.Exit(3)
	}
	fmt.Printf("config loaded: %s\n", strings.SplitN(string(b), "\n", 2)[0])
}

// ballast keeps -alloc-mb memory reachable.
var ballast []byte

// heartbeat reports to a health.HeartbeatServer in its line protocol,
// until stopAfter (if set) has passed.
func heartbeat(socket, id string, every, stopAfter time.Duration) {
	var conn net.Conn
	start := time.Now()
	for {
		if stopAfter > 0 && time.Since(start) > stopAfter {
			return
		}
		if conn == nil {
			c, err := net.Dial("unix", socket)
			if err != nil {
				time.Sleep(every)
				continue
			}
			conn = c
		}
		line := fmt.Sprintf(`{"agent_id":%q,"pid":%d,"status":"running","cpu":1.5,"memory":1048576,"timestamp":%q}`+"\n",
			id, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
		if _, err := conn.Write([]byte(line)); err != nil {
			conn.Close()
			conn = nil
		}
		time.Sleep(every)
	}
}

// forkGrandchildren starts n copies of this program that sleep forever and
// leaves them running: they are the agent's helpers a supervisor must not
// leave behind.
func forkGrandchildren(n int, ignoreTerm bool, pidFile, seqDir string, every time.Duration) {
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}
	var pids []string
	for range n {
		args := []string{}
		if ignoreTerm {
			args = append(args, "-ignore-term")
		}
		if seqDir != "" {
			args = append(args, "-seq-dir", seqDir, "-every", every.String())
		}
		cmd := exec.Command(self, args...)
		if seqDir != "" {
			cmd.Stdout = os.Stdout // the grandchild shares its parent's output
		}
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
		go cmd.Wait() //nolint:errcheck // reaped only to avoid zombies while we live
	}
	writeFile(pidFile, strings.Join(pids, "\n")+"\n")
}

// recordRestartLatency appends to stamp.lat how long ago the previous run
// wrote its exit stamp, if it did.
func recordRestartLatency(stamp string) {
	if stamp == "" {
		return
	}
	now := time.Now()
	b, err := os.ReadFile(stamp)
	if err != nil {
		return // the first run
	}
	exited, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		fail(err)
	}
	f, err := os.OpenFile(stamp+".lat", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	fmt.Fprintln(f, now.Sub(time.Unix(0, exited)).Nanoseconds())
}

// writeSequence prints numbered lines, each in one write (two with split),
// and after each records its number in dir/PID (fixed width, in place),
// so whoever reads the output later knows how many lines this process
// wrote at least.
func writeSequence(dir string, every time.Duration, split bool) {
	pid := os.Getpid()
	count, err := os.Create(filepath.Join(dir, strconv.Itoa(pid)))
	if err != nil {
		fail(err)
	}
	for n := 1; ; n++ {
		line := fmt.Appendf(nil, "seq %d %d %d\n", pid, n, time.Now().UnixNano())
		if split {
			if _, err := os.Stdout.Write(line[:len(line)/2]); err != nil {
				return
			}
			time.Sleep(every)
			line = line[len(line)/2:]
		}
		if _, err := os.Stdout.Write(line); err != nil {
			return // stdout is gone: nobody reads us any more
		}
		if _, err := count.WriteAt(fmt.Appendf(nil, "%020d\n", n), 0); err != nil {
			fail(err)
		}
		time.Sleep(every)
	}
}

// writeFile writes atomically (temp file and rename), so a test polling for
// the file never reads it half written.
func writeFile(path, content string) {
	if path == "" {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "testagent:", err)
	os.Exit(111)
}

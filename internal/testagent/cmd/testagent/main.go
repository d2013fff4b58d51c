// Command testagent is a scriptable stand-in for a real agent, used by tend's
// tests and examples. Every behaviour a supervisor must cope with is a flag:
// exiting with a code after a while, ignoring SIGTERM, forking grandchildren
// (which may ignore SIGTERM too), printing lines at a rate, answering SIGHUP,
// and writing PIDs to files so tests can check the OS, not tend's view of it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
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
	)
	flag.Parse()

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if !*hup {
		signal.Reset(syscall.SIGHUP)
	}
	writeFile(*pidFile, strconv.Itoa(os.Getpid())+"\n")
	if *fork > 0 {
		forkGrandchildren(*fork, *grandIgnore, *grandFile)
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
			if *crashBig > 0 {
				os.Stderr.WriteString(strings.Repeat("x", *crashBig-len("crash\n")) + "crash\n")
			}
			os.Exit(*exitCode)
		case s := <-signals:
			switch s {
			case syscall.SIGHUP:
				fmt.Println("reloaded")
			case syscall.SIGTERM:
				if !*ignoreTerm {
					fmt.Println("terminating")
					time.Sleep(*termDelay)
					os.Exit(0)
				}
			}
		}
	}
}

// forkGrandchildren starts n copies of this program that sleep forever and
// leaves them running: they are the agent's helpers a supervisor must not
// leave behind.
func forkGrandchildren(n int, ignoreTerm bool, pidFile string) {
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
		cmd := exec.Command(self, args...)
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
		go cmd.Wait() //nolint:errcheck // reaped only to avoid zombies while we live
	}
	writeFile(pidFile, strings.Join(pids, "\n")+"\n")
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

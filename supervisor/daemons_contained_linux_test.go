package supervisor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/procfs"
)

// daemonizes runs a real program that daemonizes (its main process forks
// the daemon, which leaves the session, and exits) as a contained agent
// that is never restarted, and checks that the daemon is killed with the
// main process's end and counted on the Exit; the bug was an agent
// reported as exited while its daemon ran on, unsupervised. alive says
// whether some part of the daemon still answers.
func daemonizes(t *testing.T, spec Spec, alive func() bool) {
	t.Helper()
	requireCgroups(t)
	g := newGroup(t, GroupOptions{})
	spec.Restart.Policy = RestartNever
	spec.StartSeconds = config.Duration(time.Millisecond)
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctxTimeout(t, 10*time.Second)) //nolint:errcheck // the launcher exits 0 at once
	st, err := p.Wait(ctxTimeout(t, 10*time.Second))
	if err != nil || st.LastExit == nil {
		t.Fatalf("%v, %+v", err, st)
	}
	if st.LastExit.Leftovers == 0 {
		t.Errorf("exit %q: the daemon it left was not counted", st.LastExit.String())
	}
	if alive() {
		t.Fatalf("the daemon outlived its agent (exit %q)", st.LastExit.String())
	}
	t.Logf("exit: %s", st.LastExit.String())
}

// nginx with `daemon on;` forks a master that leaves the session, which
// forks the workers serving the port.
func TestNginxDaemonOnIsNotLeftRunning(t *testing.T) {
	path := program(t, "nginx", "nginx-light")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	conf := filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf("daemon on;\nworker_processes 2;\npid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp {\n  access_log off;\n  server { listen %s; return 200 \"up\"; }\n}\n", dir, dir, addr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := agentSpec(t)
	spec.Path, spec.Args = path, []string{"-c", conf, "-p", dir}
	daemonizes(t, spec, func() bool {
		for range 20 { // nginx's master may still be starting its workers
			if _, err := get("http://" + addr); err == nil {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	})
}

// collectd without -f forks into the background, writing its PID file.
func TestCollectdWithoutForegroundIsNotLeftRunning(t *testing.T) {
	path := program(t, "collectd", "collectd-core")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "collectd.pid")
	conf := filepath.Join(dir, "collectd.conf")
	body := fmt.Sprintf("BaseDir %q\nPIDFile %q\nInterval 10\n", dir, pidFile)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := agentSpec(t)
	spec.Path, spec.Args = path, []string{"-C", conf}
	daemonizes(t, spec, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0 && alive(pid)
	})
}

// PostgreSQL's postmaster puts each child (checkpointer, walwriter,
// backends) in a session of its own. Its children end themselves when it
// dies, unless they cannot: one stopped (here with SIGSTOP, as a child
// stuck or under a debugger) outlived a killed postmaster, held the old
// shared memory, and the next postmaster could not start. In a cgroup it
// is killed with the postmaster, before the next one starts.
func TestPostgresChildrenDieWithThePostmaster(t *testing.T) {
	requireCgroups(t)
	bin := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		t.Skip("PostgreSQL 15 not installed (Debian package postgresql-15)")
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user (Debian package postgresql-15)")
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) //nolint:errcheck // the postgres user must reach its data
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(d, uid, gid) //nolint:errcheck // checked by initdb
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "--auth=trust", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := strconv.Itoa(freePort(t))
	socket := filepath.Join(sock, ".s.PGSQL."+port)
	g := newGroup(t, GroupOptions{})
	spec := agentSpec(t)
	spec.Path, spec.User = filepath.Join(bin, "postgres"), "postgres"
	spec.Args = []string{"-D", data, "-k", sock, "-p", port, "-c", "listen_addresses="}
	spec.StartSeconds = config.Duration(0)
	spec.Ready = func(context.Context) error { _, err := os.Stat(socket); return err }
	spec.StartTimeout = config.Duration(30 * time.Second)
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	first := p.Status()
	children := waitForProcesses(t, first.Boundary, 4)
	escaped, stuck := 0, 0
	for _, pid := range children {
		if st, err := procfs.ReadStat(pid); err == nil && st.PGRP != first.PID {
			escaped, stuck = escaped+1, pid
		}
	}
	if escaped == 0 || stuck == 0 {
		t.Fatalf("no child of the postmaster left its process group: nothing to test (%v)", children)
	}
	if err := syscall.Kill(stuck, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	exits := make(chan Exit, 4)
	defer p.Subscribe(func(e Event) {
		if x := e.Exit(); x != nil {
			exits <- *x
		}
	})()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit := <-exits
	for _, pid := range children {
		if alive(pid) {
			t.Errorf("postmaster child %d outlived it", pid)
		}
	}
	if exit.Leftovers == 0 {
		t.Errorf("exit %q: the stopped child %d was not counted", exit.String(), stuck)
	}
	if err := g.WaitReady(ctxTimeout(t, 30*time.Second), spec.Name); err != nil {
		t.Fatalf("the next postmaster did not come up: %v", err)
	}
	t.Logf("%d children (%d in sessions of their own) killed with the postmaster: %s", len(children), escaped, exit.String())
}

// waitForProcesses waits until the cgroup leaf named by boundary holds
// more than n processes, and returns them.
func waitForProcesses(t *testing.T, boundary string, n int) []int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if pids := leafPIDs(boundary); len(pids) > n {
			return pids
		}
	}
	t.Fatalf("%s never held more than %d processes", boundary, n)
	return nil
}

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
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
)

// With a Ready probe, Start returns once the probe passes, not after
// StartSeconds, and nothing polls after that.
func TestReadyProbeIsTheStartCriterion(t *testing.T) {
	marker := tempFile(t, "ready")
	spec := agentSpec(t, "-pidfile", marker)
	spec.StartSeconds = config.Duration(time.Hour) // would block Start if used
	calls := 0
	spec.Ready = func(ctx context.Context) error {
		calls++
		_, err := os.Stat(marker)
		return err
	}
	p := newProcess(t, spec)
	begin := time.Now()
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if took := time.Since(begin); took > 5*time.Second {
		t.Fatalf("Start took %v", took)
	}
	if _, err := os.Stat(marker); err != nil || p.Status().State != Running {
		t.Fatalf("Running before the probe could pass: %v, %+v", err, p.Status())
	}
	after := calls
	time.Sleep(300 * time.Millisecond)
	if calls != after {
		t.Fatalf("the probe was called %d more times while Running", calls-after)
	}
}

// A child that never gets ready is killed at StartTimeout and the run
// counts as failed.
func TestReadyProbeStartTimeout(t *testing.T) {
	spec := agentSpec(t)
	spec.Ready = func(ctx context.Context) error { return errors.New("not yet") }
	spec.StartTimeout = config.Duration(200 * time.Millisecond)
	spec.Restart.MaxRestarts = 1
	spec.Restart.RetryFailedAfter = -1
	p := newProcess(t, spec)
	rec := record(t, p)
	err := p.Start(ctxTimeout(t, 10*time.Second))
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "start timeout: not ready within 200ms (the Ready probe's last error: not yet)") {
		t.Fatalf("Start: %v, want ErrStartFailed for a start timeout, with the probe's error", err)
	}
	ev := rec.waitState(t, 5*time.Second, Failed)
	if ev.Status.Restarts != 1 || len(ev.Exits) != 2 || !strings.HasPrefix(ev.Exits[0].Err, "start timeout") {
		t.Fatalf("failed after %d restarts with exits %+v", ev.Status.Restarts, ev.Exits)
	}
	for _, e := range ev.Exits {
		if e.Ran < 150*time.Millisecond || e.Ran > 3*time.Second {
			t.Fatalf("a run lasted %v, want about the 200ms start timeout", e.Ran)
		}
	}
}

// With NotifyReady the child's READY=1 on NOTIFY_SOCKET is the start
// criterion; the socket directory is private and goes with the child.
func TestNotifyReady(t *testing.T) {
	spec := agentSpec(t, "-notify-ready-after", "300ms")
	spec.StartSeconds = config.Duration(time.Hour) // would block Start if used
	spec.NotifyReady = true
	p := newProcess(t, spec)
	begin := time.Now()
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if took := time.Since(begin); took < 250*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Running after %v, want just after the agent's READY=1 at 300ms", took)
	}
}

// A READY=1 from a process outside the child's group is ignored.
func TestNotifyReadyIgnoresStrangers(t *testing.T) {
	spec := agentSpec(t, "-print-env", "NOTIFY_SOCKET")
	var out lockedWriter
	spec.Stdout = &out
	spec.NotifyReady = true
	spec.StartTimeout = config.Duration(time.Second)
	spec.Restart.Policy = RestartNever
	p := newProcess(t, spec)
	errc := make(chan error, 1)
	go func() { errc <- p.Start(ctxTimeout(t, 10*time.Second)) }()
	waitOutput(t, &out, "NOTIFY_SOCKET=/")
	path := strings.TrimSpace(strings.TrimPrefix(out.String(), "NOTIFY_SOCKET="))
	if info, err := os.Stat(filepath.Dir(path)); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory %s: %v, mode %v; want 0700", filepath.Dir(path), err, info.Mode().Perm())
	}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("READY=1"))
	c.Close()
	if err := <-errc; !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "start timeout") {
		t.Fatalf("Start after a stranger's READY=1: %v, want a start timeout", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Fatalf("socket directory left behind: %v", err)
	}
}

// A child that stops sending WATCHDOG=1 is killed and restarted; one that
// keeps sending them is left alone.
func TestWatchdog(t *testing.T) {
	spec := agentSpec(t, "-notify-ready-after", "0s", "-watchdog-every", "50ms", "-watchdog-stop-after", "1s")
	spec.NotifyReady = true
	spec.Watchdog = config.Duration(500 * time.Millisecond) // ten keep-alives of slack
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	ev := rec.waitFor(t, 10*time.Second, "watchdog kill", func(e Event) bool { return e.To == Backoff })
	if took := time.Since(begin); took < 900*time.Millisecond {
		t.Fatalf("killed after %v although keep-alives came until 1s", took)
	}
	if x := ev.Status.LastExit; x == nil || !strings.HasPrefix(x.Err, "watchdog timeout") || x.Signal.String() != "SIGKILL" {
		t.Fatalf("exit %+v, want a watchdog timeout", ev.Status.LastExit)
	}
	rec.waitFor(t, 10*time.Second, "restart", func(e Event) bool { return e.To == Running && e.Status.Restarts == 1 })

	if _, err := New(Spec{Name: "x", Path: agentPath, Watchdog: config.Duration(time.Second)}); err == nil ||
		!strings.Contains(err.Error(), "notify_ready") {
		t.Fatalf("watchdog without notify_ready: %v", err)
	}
}

// The socket is read for the child's whole life: an agent that keeps
// reporting after READY=1 (STATUS= on every reload, say) never blocks in
// sd_notify, with no watchdog to make anyone listen.
func TestNotifySocketIsDrainedAfterReady(t *testing.T) {
	var out lockedWriter
	spec := agentSpec(t, "-notify-ready-after", "0s", "-notify-statuses", "5000")
	spec.NotifyReady = true
	spec.Stdout = &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &out, "sent 5000 statuses")
}

// A TMPDIR too long for a socket path (sun_path holds 107 bytes) does not
// stop NotifyReady agents from starting.
func TestNotifyReadyWithLongTempDir(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", long)
	spec := agentSpec(t, "-notify-ready-after", "0s")
	spec.NotifyReady = true
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start with TMPDIR of %d bytes: %v", len(long), err)
	}
}

// An agent run as another user reaches its notify socket, which that user
// owns and nobody else can enter.
func TestNotifyReadyAsAnotherUser(t *testing.T) {
	name, bin := throwawayUser(t)
	var out lockedWriter
	spec := agentSpec(t, "-notify-ready-after", "0s", "-print-env", "NOTIFY_SOCKET")
	spec.Path, spec.User = bin, name
	spec.NotifyReady = true
	spec.StartTimeout = config.Duration(3 * time.Second)
	spec.Stdout = &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start as %s: %v", name, err)
	}
	waitOutput(t, &out, "NOTIFY_SOCKET=/")
	dir := filepath.Dir(strings.TrimSpace(strings.TrimPrefix(out.String(), "NOTIFY_SOCKET=")))
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Lookup(name)
	if uid := strconv.Itoa(int(info.Sys().(*syscall.Stat_t).Uid)); uid != u.Uid || info.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory owned by %s, mode %v; want %s's, 0700", uid, info.Mode().Perm(), name)
	}
}

// systemdNotify returns the path of systemd's systemd-notify, or skips.
func systemdNotify(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify not installed (Debian package systemd)")
	}
	return path
}

// systemd's own client: READY=1 from a shell's child, and many STATUS=
// after it, in a `set -e` script that fails if any call does. Each call
// also sends BARRIER=1 with a descriptor and waits (up to 5 s) for it to
// be closed, which reading the message does.
func TestSystemdNotifyClient(t *testing.T) {
	sdn := systemdNotify(t)
	var out lockedWriter
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = []string{"-c", fmt.Sprintf(`set -e
%[1]s --ready
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do %[1]s --status="reload $i"; done
echo done
exec sleep 60`, sdn)}
	spec.NotifyReady = true
	spec.StartTimeout = config.Duration(5 * time.Second)
	spec.Stdout, spec.Stderr = &out, &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitOutput(t, &out, "done")
}

// systemd-notify run by an agent that is another user (nobody) gets its
// READY=1 through.
func TestSystemdNotifyAsNobody(t *testing.T) {
	sdn := systemdNotify(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the agent as nobody")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	spec := agentSpec(t)
	spec.Path, spec.User = "/bin/sh", "nobody"
	spec.Args = []string{"-c", sdn + " --ready; exec sleep 60"}
	spec.NotifyReady = true
	spec.StartTimeout = config.Duration(5 * time.Second)
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Start as nobody: %v", err)
	}
}

// STATUS= lands in the Status, the latest text winning; WATCHDOG=trigger
// kills the child as a missed watchdog would, without a Watchdog set.
func TestNotifyStatusAndTrigger(t *testing.T) {
	sdn := systemdNotify(t)
	spec := agentSpec(t)
	spec.Path = "/bin/sh"
	spec.Args = []string{"-c", fmt.Sprintf(`%[1]s --ready --status="warming up"
%[1]s --status="serving 3 clients"
sleep 0.5
%[1]s WATCHDOG=trigger
exec sleep 60`, sdn)}
	spec.NotifyReady = true
	spec.Restart.Policy = RestartNever
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ev := rec.waitState(t, 10*time.Second, Exited)
	if x := ev.Status.LastExit; x == nil || !strings.HasPrefix(x.Err, "watchdog triggered") || x.Signal != Signal(syscall.SIGKILL) {
		t.Fatalf("exit %+v, want a triggered watchdog", x)
	}
	if got := ev.Status.NotifyStatus; got != "serving 3 clients" {
		t.Fatalf("NotifyStatus %q, want the latest STATUS=", got)
	}
}

// EXTEND_TIMEOUT_USEC= while Starting gives a slow agent more time than
// StartTimeout; without it the same agent is killed at StartTimeout.
func TestNotifyExtendsStartTimeout(t *testing.T) {
	sdn := systemdNotify(t)
	for _, extend := range []bool{true, false} {
		spec := agentSpec(t)
		spec.Name = fmt.Sprintf("%s-%v", spec.Name, extend)
		spec.Path = "/bin/sh"
		first := sdn + " --status=loading"
		if extend {
			first = sdn + " EXTEND_TIMEOUT_USEC=5000000"
		}
		spec.Args = []string{"-c", first + "; sleep 1.5; " + sdn + " --ready; exec sleep 60"}
		spec.NotifyReady = true
		spec.StartTimeout = config.Duration(time.Second)
		spec.Restart.Policy = RestartNever
		p := newProcess(t, spec)
		err := p.Start(ctxTimeout(t, 10*time.Second))
		switch {
		case extend && err != nil:
			t.Fatalf("extended start: %v", err)
		case !extend && (err == nil || !strings.Contains(err.Error(), "start timeout")):
			t.Fatalf("start without extension: %v, want a start timeout", err)
		}
	}
}

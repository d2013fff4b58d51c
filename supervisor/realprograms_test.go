//go:build linux

package supervisor

import (
	"bufio"
	"context"
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

// program returns the path of a real agent the test runs, or skips.
func program(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s)", name, debianPackage)
	}
	return path
}

// httpReady is a Ready probe: url answers.
func httpReady(url string) func(context.Context) error {
	return func(context.Context) error {
		_, err := get(url)
		return err
	}
}

// node_exporter serving on a socket tend activated
// (--web.systemd-socket), restarted ten times under clients that scrape
// without pause: no connection is refused. The same exporter binding its
// own port refuses connections at every restart (measured, see
// BenchmarkRestartUnderLoad).
func TestNodeExporterOnActivatedSocket(t *testing.T) {
	path := program(t, "prometheus-node-exporter", "prometheus-node-exporter")
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	spec := agentSpec(t)
	spec.Path = path
	spec.Args = []string{"--web.systemd-socket", "--collector.disable-defaults", "--collector.loadavg"}
	spec.Listen = []string{"tcp://" + addr}
	spec.Ready = httpReady("http://" + addr + "/metrics") // a dial would be answered by the kernel: the socket is tend's
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	c := scrapeDuring("http://"+addr+"/metrics", func() {
		for i := range 10 {
			if err := p.Restart(ctxTimeout(t, 20*time.Second)); err != nil {
				t.Fatalf("restart %d: %v", i, err)
			}
		}
	})
	t.Logf("node_exporter, 10 restarts on an activated socket: %+v", c)
	if c.refused != 0 || c.other != 0 || c.ok == 0 {
		t.Fatalf("%+v; want no refused connection", c)
	}
	body, err := get("http://" + addr + "/metrics")
	if err != nil || !strings.Contains(body, "node_load1") {
		t.Fatalf("scrape after the restarts: %v\n%.300s", err, body)
	}
}

// redis-server --supervised systemd run as the redis user: its READY=1
// and STATUS= come through; SHUTDOWN makes it send STOPPING=1 and exit 0,
// which is its own stop, not a crash to restart.
func TestRedisSupervisedSystemd(t *testing.T) {
	path := program(t, "redis-server", "redis-server")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run redis as the redis user")
	}
	u, err := user.Lookup("redis")
	if err != nil {
		t.Skip("no redis user (Debian package redis-server makes it)")
	}
	dir := t.TempDir()
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(dir), 0o755) //nolint:errcheck // only for the redis user to reach dir
	port := freePort(t)
	spec := agentSpec(t)
	spec.Path, spec.User = path, "redis"
	spec.Args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--supervised", "systemd",
		"--daemonize", "no", "--save", "", "--appendonly", "no", "--dir", dir}
	spec.NotifyReady = true
	spec.ReloadMode = ReloadNone // redis ignores SIGHUP
	spec.StartTimeout = config.Duration(10 * time.Second)
	var out lockedWriter
	spec.Stdout, spec.Stderr = &out, &out
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 20*time.Second)); err != nil {
		t.Fatalf("Start: %v\n%s", err, out.String())
	}
	if st := p.Status(); !strings.Contains(st.NotifyStatus, "Ready to accept connections") {
		t.Fatalf("NotifyStatus %q, want redis's own status text", st.NotifyStatus)
	}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "SHUTDOWN NOSAVE\r\n")
	bufio.NewReader(conn).ReadString('\n') //nolint:errcheck // redis closes the connection as it exits
	ev := rec.waitState(t, 10*time.Second, Exited)
	if ev.Reason != ReasonAgentStopped || p.Status().Restarts != 0 {
		t.Fatalf("after SHUTDOWN: %v (restarts %d), want redis's own stop\n%s", ev, p.Status().Restarts, out.String())
	}
	rec.waitFor(t, time.Second, "Stopping on STOPPING=1", func(e Event) bool { return e.Reason == ReasonAgentStopping })
}

// haproxy in master-worker mode (-Ws) reloaded twenty times in a row with
// SIGUSR2 in notify mode: every reload is confirmed by its RELOADING=1 and
// READY=1 (and the STATUS= it sends each time never fills the socket), and
// it serves after each one.
func TestHAProxyReloads(t *testing.T) {
	path := program(t, "haproxy", "haproxy")
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`global
    master-worker
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:%d
    http-request return status 200 content-type text/plain string ok
`, port)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var out lockedWriter
	spec := agentSpec(t)
	spec.Path = path
	spec.Args = []string{"-Ws", "-f", cfg}
	spec.NotifyReady = true
	spec.ReloadMode = ReloadByNotify
	spec.ReloadSignal = Signal(12) // SIGUSR2, as haproxy's own unit file
	spec.StartTimeout = config.Duration(10 * time.Second)
	spec.Stdout, spec.Stderr = &out, &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 20*time.Second)); err != nil {
		t.Fatalf("Start: %v\n%s", err, out.String())
	}
	pid := p.Status().PID
	for i := 1; i <= 20; i++ {
		if err := p.Reload(ctxTimeout(t, 20*time.Second)); err != nil {
			t.Fatalf("reload %d: %v\n%s", i, err, out.String())
		}
		if body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != "ok" {
			t.Fatalf("after reload %d: %q, %v", i, body, err)
		}
	}
	if st := p.Status(); st.State != Running || st.PID != pid || st.Restarts != 0 {
		t.Fatalf("after 20 reloads: %+v, want the same master running", st)
	}
}

// collectd has no SIGHUP handler: a signal-mode Reload kills it, and that
// exit is reported as a failed reload, not only as a crash; in restart
// mode the same Reload restarts it, which is no crash at all.
func TestCollectdReload(t *testing.T) {
	path := program(t, "collectd", "collectd-core")
	dir := t.TempDir()
	conf := filepath.Join(dir, "collectd.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf("BaseDir %q\nPIDFile %q\nInterval 1\nLoadPlugin load\n", dir, filepath.Join(dir, "collectd.pid"))), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []ReloadMode{ReloadBySignal, ReloadByRestart} {
		spec := agentSpec(t)
		spec.Name += "-" + string(mode)
		spec.Path, spec.Args = path, []string{"-f", "-C", conf}
		spec.ReloadMode = mode
		spec.Restart.Policy = RestartNever
		p := newProcess(t, spec)
		rec := record(t, p)
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		first := p.Status().PID
		if err := p.Reload(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("%s reload: %v", mode, err)
		}
		if mode == ReloadBySignal {
			ev := rec.waitState(t, 5*time.Second, Exited)
			if ev.Reason != ReasonReloadFailed || ev.Status.LastExit.Signal != Signal(syscall.SIGHUP) {
				t.Fatalf("collectd after SIGHUP: %v, want a failed reload", ev)
			}
			continue
		}
		if st := p.Status(); st.State != Running || st.PID == first || !st.LastExit.Requested || st.Streak != 0 {
			t.Fatalf("collectd after a restart reload: %+v", st)
		}
	}
}

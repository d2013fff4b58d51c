package edgedaemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/reload"
	"github.com/tend-dev/tend/supervisor"
)

// Integration tests against agents nobody here wrote, from Debian's
// packages (.ci/run installs them): they skip where the binaries are absent.

func needBinary(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not installed (apt-get install %s)", path, pkg)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually retries check until it passes or 20s have gone by.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// startSupervised starts spec's agent and stops it when the test ends.
func startSupervised(t *testing.T, spec supervisor.Spec) *supervisor.Process {
	t.Helper()
	p, err := supervisor.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(context.Background()) })
	return p
}

func TestNodeExporterSupervised(t *testing.T) {
	const bin = "/usr/bin/prometheus-node-exporter"
	needBinary(t, bin, "prometheus-node-exporter")
	addr := freePort(t)
	probe := health.HTTPGet("http://" + addr + "/metrics")
	p := startSupervised(t, supervisor.Spec{Name: "node-exporter", Path: bin,
		Args:        []string{"--web.listen-address=" + addr, "--collector.disable-defaults", "--collector.loadavg"},
		Ready:       probe.Check, // Running means serving /metrics
		StopTimeout: config.Duration(10 * time.Second)})
	ctx := context.Background()
	if err := probe.Check(ctx); err != nil {
		t.Fatalf("Start returned before /metrics answered: %v", err)
	}
	body, _ := get("http://" + addr + "/metrics")
	if !strings.Contains(body, "node_load1") {
		t.Fatal("/metrics lacks node_load1")
	}

	first := p.Status().PID
	syscall.Kill(first, syscall.SIGKILL)
	eventually(t, "restarted after SIGKILL", func() error {
		st := p.Status()
		if st.State != supervisor.Running || st.PID == first {
			return fmt.Errorf("state %v pid %d", st.State, st.PID)
		}
		return probe.Check(ctx)
	})
	second := p.Status().PID
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{first, second} {
		if alive(pid) {
			t.Errorf("node exporter %d still in /proc after Stop", pid)
		}
	}
	if err := probe.Check(ctx); err == nil {
		t.Error("metrics still served after Stop")
	}
}

// The blackbox exporter's config is rewritten atomically and applied with
// SIGHUP, without a restart; a broken config is rolled back by the
// transaction and the exporter keeps the last good one.
func TestBlackboxExporterReloadAndRollback(t *testing.T) {
	const bin = "/usr/bin/prometheus-blackbox-exporter"
	needBinary(t, bin, "prometheus-blackbox-exporter")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "blackbox.yml")
	if err := reload.WriteFile(cfgPath, []byte("modules:\n  first_module:\n    prober: http\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	p := startSupervised(t, supervisor.Spec{Name: "blackbox", Path: bin, Dir: dir,
		Args:         []string{"--config.file=" + cfgPath, "--web.listen-address=" + addr},
		StartSeconds: config.Duration(300 * time.Millisecond)})
	ctx := context.Background()
	eventually(t, "exporter up", func() error { _, err := get("http://" + addr + "/-/healthy"); return err })
	pid := p.Status().PID

	loaded := func(module string) func(context.Context) error {
		return func(ctx context.Context) error {
			var err error
			for range 30 {
				var body string
				if body, err = get("http://" + addr + "/config"); err == nil && strings.Contains(body, module) {
					return nil
				}
				if err == nil {
					err = errors.New("the exporter's /config does not show " + module)
				}
				time.Sleep(100 * time.Millisecond)
			}
			return err
		}
	}
	tx := reload.Transaction{Path: cfgPath, Apply: func(ctx context.Context) error { return p.Reload(ctx) }}

	tx.Verify = loaded("second_module")
	if out, err := tx.Run(ctx, []byte("modules:\n  second_module:\n    prober: tcp\n")); err != nil {
		t.Fatalf("good config: %+v %v", out, err)
	}
	if p.Status().PID != pid {
		t.Fatal("the reload restarted the exporter")
	}

	tx.Verify = loaded("third_module")
	out, err := tx.Run(ctx, []byte("modules:\n  third_module:\n    prober: http\n    timeout: [unclosed\n"))
	if err == nil || !out.RolledBack || out.Stage != "verify" || out.RollbackErr != nil {
		t.Fatalf("broken config: %+v %v", out, err)
	}
	if err := loaded("second_module")(ctx); err != nil {
		t.Fatalf("after rollback: %v", err)
	}
	if b, _ := os.ReadFile(cfgPath); !strings.Contains(string(b), "second_module") {
		t.Fatalf("config file after rollback: %s", b)
	}
	if st := p.Status(); st.PID != pid || st.State != supervisor.Running {
		t.Fatalf("exporter after rollback: %+v (pid was %d)", st, pid)
	}
}

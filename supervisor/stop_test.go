package supervisor

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

func TestStopEscalatesToSIGKILLAfterStopTimeout(t *testing.T) {
	spec := agentSpec(t, "-ignore-term")
	spec.StopTimeout = config.Duration(300 * time.Millisecond)
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	pid := p.Status().PID
	begin := time.Now()
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	took := time.Since(begin)
	if took < 300*time.Millisecond || took > 3*time.Second {
		t.Fatalf("Stop took %v, want StopTimeout (300ms) plus a little", took)
	}
	if alive(pid) {
		t.Fatalf("pid %d alive after Stop", pid)
	}
	if e := p.Status().LastExit; e == nil || e.Signal.String() != "SIGKILL" || !e.Requested {
		t.Fatalf("last exit %+v, want a requested SIGKILL", e)
	}
}

func TestStopCancelledContextEscalatesAtOnce(t *testing.T) {
	spec := agentSpec(t, "-ignore-term")
	spec.StopTimeout = config.Duration(30 * time.Second)
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	pid := p.Status().PID
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	begin := time.Now()
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("Stop with a cancelled ctx took %v, want about 100ms", took)
	}
	if alive(pid) {
		t.Fatalf("pid %d alive after Stop", pid)
	}
}

func TestStopDeadlineShortensStopTimeout(t *testing.T) {
	spec := agentSpec(t, "-ignore-term")
	spec.StopTimeout = config.Duration(30 * time.Second)
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := p.Stop(ctxTimeout(t, 200*time.Millisecond)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(begin); took < 150*time.Millisecond || took > 3*time.Second {
		t.Fatalf("Stop took %v, want the ctx deadline of 200ms", took)
	}
}

// A child that forks grandchildren, one of which ignores SIGTERM, leaves
// nothing alive after Stop.
func TestStopLeavesNoOrphans(t *testing.T) {
	pids := tempFile(t, "grand.pids")
	p := newProcess(t, agentSpec(t, "-fork", "3", "-grandchild-ignore-term", "-grandpids", pids))
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	grand := readPIDs(t, pids, 3)
	for _, g := range grand {
		if !alive(g) {
			t.Fatalf("grandchild %d not running before Stop", g)
		}
	}
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, g := range grand {
		if alive(g) {
			t.Errorf("grandchild %d alive after Stop returned", g)
		}
	}
}

// When the main process dies on its own, its grandchildren are gone before
// the next child starts.
func TestExitKillsGrandchildrenBeforeRestart(t *testing.T) {
	pids := tempFile(t, "grand.pids")
	spec := agentSpec(t, "-fork", "2", "-grandchild-ignore-term", "-grandpids", pids, "-exit", "1", "-after", "300ms")
	p := newProcess(t, spec)
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	grand := readPIDs(t, pids, 2)
	os.Remove(pids)
	ev := rec.waitFor(t, 5*time.Second, "restart", func(e Event) bool { return e.To == Starting && e.Status.Restarts == 1 })
	for _, g := range grand {
		if alive(g) {
			t.Errorf("grandchild %d of the first run alive when the second run started (%v)", g, ev)
		}
	}
}

// tend waits only on its own children: a host that runs its own child
// beside many restarting agents still gets that child's exit status.
func TestHostKeepsItsOwnChildrensExitCodes(t *testing.T) {
	spec := agentSpec(t, "-exit", "1", "-after", "1ms")
	spec.Restart.MaxRestarts = -1
	p := newProcess(t, spec)
	go p.Start(context.Background())
	for i := range 20 {
		cmd := exec.Command("/bin/sh", "-c", "exit 7")
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 7 {
			t.Fatalf("host child %d: exit code %d (err %v), want 7", i, code, err)
		}
	}
}

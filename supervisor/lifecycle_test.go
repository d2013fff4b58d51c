package supervisor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"
)

func TestStartStop(t *testing.T) {
	p := newProcess(t, agentSpec(t))
	rec := record(t, p)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := p.Status()
	if st.State != Running || st.PID == 0 || !alive(st.PID) {
		t.Fatalf("after Start: %+v (alive %v)", st, alive(st.PID))
	}
	if err := p.Start(ctxTimeout(t, time.Second)); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second Start: %v, want ErrAlreadyStarted", err)
	}
	if err := p.Stop(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if alive(st.PID) {
		t.Fatalf("pid %d alive after Stop returned", st.PID)
	}
	got := p.Status()
	if got.State != Stopped || got.PID != 0 || got.LastExit == nil || !got.LastExit.Requested {
		t.Fatalf("after Stop: %+v", got)
	}
	if err := p.Stop(ctxTimeout(t, time.Second)); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	rec.waitState(t, time.Second, Stopped)
	want := []string{"stopped->starting", "starting->running", "running->stopping", "stopping->stopped"}
	if got := rec.transitions(); !slices.Equal(got, want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}

func TestStartReportsSpawnErrors(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, spec *Spec)
		want    error
	}{
		{"binary removed after New", func(t *testing.T, spec *Spec) { os.Remove(spec.Path) }, fs.ErrNotExist},
		{"binary no longer executable", func(t *testing.T, spec *Spec) { os.Chmod(spec.Path, 0o644) }, fs.ErrPermission},
		{"work dir removed after New", func(t *testing.T, spec *Spec) { os.Remove(spec.Dir) }, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := agentSpec(t)
			spec.Path = copyAgent(t)
			spec.Dir = t.TempDir()
			p := newProcess(t, spec)
			tt.breakIt(t, &spec)
			err := p.Start(ctxTimeout(t, 5*time.Second))
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrStartFailed) {
				t.Fatalf("Start: %v, want %v and ErrStartFailed", err, tt.want)
			}
			if st := p.Status(); st.State != Failed || st.LastExit == nil || st.LastExit.Err == "" {
				t.Fatalf("status after spawn error: %+v", st)
			}
		})
	}
}

// copyAgent copies the test agent binary to a path the test may break.
func copyAgent(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(agentPath)
	if err != nil {
		t.Fatal(err)
	}
	path := tempFile(t, "agent")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStatusAfterStopIsStoppedForIdleProcess(t *testing.T) {
	p := newProcess(t, agentSpec(t))
	if err := p.Stop(context.Background()); err != nil {
		t.Fatalf("Stop of a never-started process: %v", err)
	}
	if err := p.Signal(os.Interrupt); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Signal when idle: %v, want ErrNotRunning", err)
	}
	if err := p.Reload(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Reload when idle: %v, want ErrNotRunning", err)
	}
	if st := p.Status(); st.State != Stopped || st.Name != p.Name() {
		t.Fatalf("idle status %+v", st)
	}
}

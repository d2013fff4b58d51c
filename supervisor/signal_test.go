package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReloadSendsSIGHUP(t *testing.T) {
	var out lockedWriter
	spec := agentSpec(t, "-hup")
	spec.Stdout = &out
	p := newProcess(t, spec)
	// A Reload during Starting waits for Running.
	go p.Start(context.Background())
	if err := p.Reload(ctxTimeout(t, 5*time.Second)); err != nil && !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Reload: %v", err)
	}
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil && !errors.Is(err, ErrAlreadyStarted) {
		t.Fatal(err)
	}
	if err := p.Reload(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Reload while Running: %v", err)
	}
	waitOutput(t, &out, "reloaded")
	pid := p.Status().PID
	if !alive(pid) {
		t.Fatal("SIGHUP killed the agent")
	}
}

func TestSignalReachesMainProcess(t *testing.T) {
	var out lockedWriter
	spec := agentSpec(t)
	spec.Stdout = &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	waitOutput(t, &out, "terminating")
	p.Stop(ctxTimeout(t, 5*time.Second))
	if err := p.Signal(syscall.SIGTERM); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Signal after Stop: %v, want ErrNotRunning", err)
	}
}

func waitOutput(t *testing.T, w *lockedWriter, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(w.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q lacks %q", w.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSignalJSON(t *testing.T) {
	for in, want := range map[string]Signal{`"SIGINT"`: Signal(syscall.SIGINT), `"term"`: Signal(syscall.SIGTERM), `"HUP"`: Signal(syscall.SIGHUP), `9`: Signal(syscall.SIGKILL)} {
		var s Signal
		if err := json.Unmarshal([]byte(in), &s); err != nil || s != want {
			t.Errorf("decode %s = %v, %v; want %v", in, s, err, want)
		}
	}
	for _, bad := range []string{`"SIGNOPE"`, `0`, `99`, `true`} {
		var s Signal
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("decode %s gave %v, want an error", bad, s)
		}
	}
	b, _ := json.Marshal(Signal(syscall.SIGUSR1))
	if string(b) != `"SIGUSR1"` {
		t.Errorf("marshal SIGUSR1 = %s", b)
	}
}

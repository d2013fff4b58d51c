package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/supervisor"
)

// A real agent that reads its config on SIGHUP and dies on a bad one: a
// good change is applied by reload (same PID), a bad one is rolled back
// and the agent brought back to the last good config.
func TestTransactionAppliesAndRollsBack(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	write(t, cfgPath, "version: 1\nvalid: true\n")
	p, err := supervisor.New(supervisor.Spec{
		Name: "configured", Path: agentPath, Args: []string{"-hup", "-config", cfgPath},
		StartSeconds: config.Duration(100 * time.Millisecond),
		Restart:      supervisor.RestartSpec{Policy: supervisor.RestartOnFailure, RetryFailedAfter: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(ctx)
	pid := p.Status().PID

	tx := Transaction{
		Path: cfgPath,
		// Reload in place; an agent that died of a bad config is restarted.
		Apply: func(ctx context.Context) error {
			err := p.Reload(ctx)
			if errors.Is(err, supervisor.ErrNotRunning) {
				return p.Restart(ctx)
			}
			return err
		},
		Verify: func(ctx context.Context) error {
			time.Sleep(300 * time.Millisecond) // the agent re-reads its config
			if st := p.Status(); st.State != supervisor.Running || st.Restarts > 0 && st.LastExit != nil && st.LastExit.Code == 3 {
				return errors.New("agent not running on the new config: " + st.State.String())
			}
			return nil
		},
	}
	out, err := tx.Run(ctx, []byte("version: 2\nvalid: true\n"))
	if err != nil || out.Stage != "" || out.RolledBack {
		t.Fatalf("good change: %+v, %v", out, err)
	}
	if p.Status().PID != pid {
		t.Fatal("a reload restarted the agent")
	}

	out, err = tx.Run(ctx, []byte("version: 3\nvalid: false\n"))
	if err == nil || out.Stage != "verify" || !out.RolledBack || out.RollbackErr != nil {
		t.Fatalf("bad change: %+v, %v", out, err)
	}
	if !strings.Contains(err.Error(), out.NewHash[:12]) || !strings.Contains(err.Error(), out.OldHash[:12]) {
		t.Fatalf("error %q lacks the hashes", err)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != "version: 2\nvalid: true\n" {
		t.Fatalf("after rollback the file holds %q", b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Status().State != supervisor.Running {
		if time.Now().After(deadline) {
			t.Fatalf("agent not back after rollback: %+v", p.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}

	rejected := false
	tx.Validate = func(b []byte) error {
		if !strings.Contains(string(b), "valid: true") {
			rejected = true
			return errors.New("not valid")
		}
		return nil
	}
	out, err = tx.Run(ctx, []byte("valid: nope\n"))
	if err == nil || out.Stage != "validate" || out.RolledBack || !rejected {
		t.Fatalf("invalid change: %+v, %v", out, err)
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != "version: 2\nvalid: true\n" {
		t.Fatalf("a rejected change touched the file: %q", b)
	}
}

func TestTransactionApplyFailureRestoresMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.yaml")
	applies := 0
	tx := Transaction{Path: path, Apply: func(context.Context) error {
		applies++
		if applies == 1 {
			return errors.New("agent refused")
		}
		return nil
	}}
	out, err := tx.Run(context.Background(), []byte("a: 1\n"))
	if err == nil || out.Stage != "apply" || !out.RolledBack || applies != 2 {
		t.Fatalf("%+v, %v, %d applies", out, err, applies)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a file that did not exist before is still there: %v", err)
	}
}

// A Verify cut short by its context (a newer configuration cancelled this
// one) still rolls back, and the rollback's Apply runs with a live
// context.
func TestTransactionRollsBackAfterItsContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("good: 1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var applied []string
	tx := Transaction{Path: path,
		Apply: func(ctx context.Context) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, _ := os.ReadFile(path)
			applied = append(applied, string(b))
			return nil
		},
		Verify: func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}}
	out, err := tx.Run(ctx, []byte("new: 2\n"))
	if !errors.Is(err, context.Canceled) || !out.RolledBack || out.RollbackErr != nil {
		t.Fatalf("%+v, %v: want a verify cancelled and a clean rollback", out, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "good: 1\n" || len(applied) != 2 || applied[1] != "good: 1\n" {
		t.Fatalf("file %q, applied %q: want the good content back and applied", b, applied)
	}
}

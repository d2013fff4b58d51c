package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// What a Store holds survives the host: an agent the operator stopped
// stays stopped when a new host (a new Group on the same file) applies the
// same config, even after a host that died without StopAll, and runs
// again once started; restart counters carry on.
func TestStateSurvivesTheHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	specs := func() []Spec {
		a, b := agentSpec(t, "-after", "100ms", "-exit", "1"), agentSpec(t)
		a.Name, b.Name = "flaky", "operator-stopped"
		a.Restart.MaxRestarts = -1
		return []Spec{a, b}
	}
	host := func() *Group {
		store, err := NewFileStore(path)
		if err != nil {
			t.Fatal(err)
		}
		return newGroup(t, GroupOptions{Store: store})
	}

	first := host()
	if _, err := first.Launch(context.Background(), specs()); err != nil {
		t.Fatal(err)
	}
	if err := first.WaitReady(ctxTimeout(t, 10*time.Second), "operator-stopped"); err != nil {
		t.Fatal(err)
	}
	if err := first.Stop(ctxTimeout(t, 10*time.Second), "operator-stopped"); err != nil {
		t.Fatal(err)
	}
	flaky, _ := first.Get("flaky")
	for flaky.Status().Restarts < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	// The host dies: the file is what it was at that moment (copied
	// aside), not what an orderly StopAll would leave.
	restarts := flaky.Status().Restarts
	crashed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Close, as the host's death would, also releases its cgroup parent,
	// which a second live instance of the same host may not take.
	if err := first.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, crashed, 0o600); err != nil {
		t.Fatal(err)
	}

	second := host()
	if _, err := second.Launch(context.Background(), specs()); err != nil {
		t.Fatal(err)
	}
	held, _ := second.Get("operator-stopped")
	if st := held.Status(); st.State != Stopped || st.Run != 0 {
		t.Fatalf("the operator's stop did not survive the host: %+v", st)
	}
	if err := second.StartAll(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if held.Status().State != Stopped {
		t.Fatal("StartAll started an agent the operator stopped")
	}
	again, _ := second.Get("flaky")
	if st := again.Status(); st.Restarts < restarts-1 || st.LastExit == nil { // the file may predate the last restart
		t.Fatalf("restart count not carried on: %+v (had %d)", st, restarts)
	}
	if err := second.Start(ctxTimeout(t, 10*time.Second), "operator-stopped"); err != nil {
		t.Fatal(err)
	}

	if err := second.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	third := host() // released by Start: the next host runs it
	if _, err := third.Launch(context.Background(), specs()); err != nil {
		t.Fatal(err)
	}
	if err := third.WaitReady(ctxTimeout(t, 10*time.Second), "operator-stopped"); err != nil {
		t.Fatalf("released agent on the next host: %v", err)
	}
}

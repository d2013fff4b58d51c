//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/fdexhaust"
)

const exhaustedHostEnv = "TEND_TEST_EXHAUSTED_HOST"

// The test binary re-executed with exhaustedHostEnv set is the helper.
func init() {
	if os.Getenv(exhaustedHostEnv) != "" {
		os.Exit(runExhaustedHost())
	}
}

// A host out of file descriptors still sees an agent die (exit detection
// needs no new descriptor), fails its restart with a clear error, leaves
// the other agents alone, and restarts it once descriptors are free. The
// host is a helper process whose open-files limit is used up.
func TestHostOutOfFileDescriptors(t *testing.T) {
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), exhaustedHostEnv+"=1", "TEND_TEST_AGENT="+agentPath)
	out, err := host.CombinedOutput()
	if err != nil {
		t.Fatalf("host: %v; it said:\n%s", err, out)
	}
	t.Logf("host:\n%s", out)
}

func runExhaustedHost() int {
	if err := exhaustedHost(); err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	return 0
}

func exhaustedHost() error {
	g, err := NewGroup(testGroupOptions(GroupOptions{}))
	if err != nil {
		return err
	}
	events := make(chan Event, 1024)
	defer g.Subscribe(func(e Event) { events <- e })()
	names := []string{"victim", "bystander1", "bystander2"}
	for _, name := range names {
		_, err := g.Add(Spec{Name: name, Path: os.Getenv("TEND_TEST_AGENT"),
			StartSeconds: config.Duration(10 * time.Millisecond),
			Restart:      RestartSpec{Backoff: backoff.Constant(200 * time.Millisecond), MaxRestarts: -1}})
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.StartAll(ctx); err != nil {
		return err
	}
	pids := map[string]int{}
	for _, st := range g.List() {
		pids[st.Name] = st.PID
	}
	defer g.Close(context.Background()) //nolint:errcheck // StopAll is checked below on the normal path

	release, err := fdexhaust.Exhaust()
	if err != nil {
		return err
	}
	killed := time.Now()
	syscall.Kill(pids["victim"], syscall.SIGKILL)
	exit, err := awaitEvent(events, func(e Event) bool { return e.Name == "victim" && e.Reason == ReasonExited })
	if err != nil {
		return fmt.Errorf("the victim's death was not seen while out of descriptors: %w", err)
	}
	fmt.Printf("exit seen %v after the SIGKILL, out of descriptors\n", exit.Time.Sub(killed).Round(time.Millisecond))
	failed, err := awaitEvent(events, func(e Event) bool { return e.Name == "victim" && e.Reason == ReasonSpawnFailed })
	if err != nil {
		return fmt.Errorf("no failed restart while out of descriptors: %w", err)
	}
	if x := failed.Status.LastExit; x == nil || !strings.Contains(x.Err, "too many open files") {
		return fmt.Errorf("spawn failure %+v does not say the descriptors ran out", x)
	}
	for _, name := range names[1:] {
		if st, _ := g.Get(name); st.Status().State != Running || st.Status().PID != pids[name] {
			return fmt.Errorf("%s disturbed: %+v", name, st.Status())
		}
	}
	release()
	if _, err := awaitEvent(events, func(e Event) bool { return e.Name == "victim" && e.To == Running }); err != nil {
		return fmt.Errorf("the victim did not come back once descriptors were free: %w", err)
	}
	if err := g.StopAll(ctx); err != nil {
		return err
	}
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			return fmt.Errorf("%s's first child %d still exists", name, pid)
		}
	}
	fmt.Println("victim restarted once descriptors were free; bystanders untouched")
	return nil
}

func awaitEvent(events <-chan Event, match func(Event) bool) (Event, error) {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if match(e) {
				return e, nil
			}
		case <-timeout:
			return Event{}, errors.New("none within 10s")
		}
	}
}

//go:build linux

package supervisor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tend-dev/tend/config"
)

// reloadTook runs one Reload and returns how long it took in virtual time.
func reloadTook(p *Process) (time.Duration, error) {
	begin := time.Now()
	err := p.Reload(context.Background())
	return time.Since(begin), err
}

// A notify reload returns exactly at the child's READY=1 after its
// RELOADING=1; a silent child fails it exactly at StartTimeout; one that
// asks for more time with EXTEND_TIMEOUT_USEC= gets it.
func TestVirtualNotifyReload(t *testing.T) {
	spec := Spec{NotifyReady: true, ReloadMode: ReloadByNotify, StartTimeout: config.Duration(time.Second)}
	ready := []fakeMessage{{10 * ms, "READY=1"}}
	for _, tc := range []struct {
		name  string
		onHUP []fakeMessage
		took  time.Duration
		fails bool
	}{
		{"done", []fakeMessage{{100 * ms, "RELOADING=1"}, {300 * ms, "READY=1"}}, 300 * ms, false},
		{"silent", nil, time.Second, true},
		{"ready without reloading", []fakeMessage{{100 * ms, "READY=1"}}, time.Second, true},
		{"extended", []fakeMessage{{100 * ms, "RELOADING=1\nEXTEND_TIMEOUT_USEC=2000000"}, {1500 * ms, "READY=1"}}, 1500 * ms, false},
		{"extended too little", []fakeMessage{{100 * ms, "RELOADING=1\nEXTEND_TIMEOUT_USEC=1000000"}, {1500 * ms, "READY=1"}}, 1100 * ms, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeChildren{behave: func(int) fakeRun { return fakeRun{notify: ready, onHUP: tc.onHUP} }}
				p := fakeProcess(t, spec, f)
				if err := p.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				took, err := reloadTook(p)
				if took != tc.took || (err != nil) != tc.fails || tc.fails && !errors.Is(err, ErrReloadFailed) {
					t.Fatalf("Reload took %v, %v; want %v, failing %v", took, err, tc.took, tc.fails)
				}
				if p.Status().Reloading {
					t.Fatal("still Reloading after the reload ended")
				}
				stopNow(t, p)
			})
		})
	}
}

// Reloads asked for during one under way are served together by the
// next: three callers, two signals.
func TestVirtualNotifyReloadsCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun {
			return fakeRun{notify: []fakeMessage{{0, "READY=1"}}, onHUP: []fakeMessage{{10 * ms, "RELOADING=1"}, {200 * ms, "READY=1"}}}
		}}
		p := fakeProcess(t, Spec{NotifyReady: true, ReloadMode: ReloadByNotify}, f)
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		errs := make(chan error, 3)
		go func() { errs <- p.Reload(context.Background()) }()
		time.Sleep(50 * ms)
		for range 2 {
			go func() { errs <- p.Reload(context.Background()) }()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if got := time.Since(begin); got != 400*ms {
			t.Fatalf("three reloads done at %v, want 400ms (two reloads of 200ms)", got)
		}
		f.mu.Lock()
		hups := slices.DeleteFunc(slices.Clone(f.signals), func(s string) bool { return !strings.HasSuffix(s, syscall.SIGHUP.String()) })
		f.mu.Unlock()
		if len(hups) != 2 {
			t.Fatalf("signals %v, want two SIGHUPs", hups)
		}
		stopNow(t, p)
	})
}

// STOPPING=1 makes the child Stopping; if it has not exited StopTimeout
// later it is killed, exactly then, and the run failed.
func TestVirtualStoppingTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeChildren{behave: func(int) fakeRun {
			return fakeRun{notify: []fakeMessage{{0, "READY=1"}, {time.Second, "STOPPING=1"}}}
		}}
		p := fakeProcess(t, Spec{NotifyReady: true, StopTimeout: config.Duration(2 * time.Second),
			Restart: RestartSpec{Policy: RestartNever}}, f)
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * ms)
		if st := p.Status(); st.State != Stopping {
			t.Fatalf("after STOPPING=1: %v, want Stopping", st.State)
		}
		st, err := p.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if x := st.LastExit; x.Ran != 3*time.Second || x.Signal != Signal(9) || x.Err == "" {
			t.Fatalf("exit %+v, want a SIGKILL at 3s as a stop timeout", x)
		}
	})
}

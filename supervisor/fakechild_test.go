package supervisor

import (
	"errors"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// fakeRun says how one fake child behaves: it exits by itself after
// exitAfter (never when zero) with code, and on the stop signal after
// termDelay, unless it ignores it.
type fakeRun struct {
	exitAfter  time.Duration
	code       int
	ignoreTerm bool
	termDelay  time.Duration
	spawnErr   error // the spawn fails instead
	// notify, when set, gives the child a notify state and sends these
	// messages after the spawn; onHUP sends its messages after each
	// SIGHUP.
	notify, onHUP []fakeMessage
}

// fakeMessage is an sd_notify datagram a fake child sends, after a delay.
type fakeMessage struct {
	after time.Duration
	text  string
}

// sendAll delivers msgs to n, each at its time from now.
func sendAll(n *notifySocket, msgs []fakeMessage) {
	for _, m := range msgs {
		time.AfterFunc(m.after, func() { n.apply(parseNotify([]byte(m.text)), time.Now()) })
	}
}

// fakeChildren stands in for real processes in tests of the timing logic,
// which run in a synctest bubble: their lives are virtual-time timers.
type fakeChildren struct {
	behave func(n int) fakeRun // n counts spawn attempts from 1

	mu      sync.Mutex
	spawns  []time.Time // attempts, failed ones included
	signals []string
}

func (f *fakeChildren) spawn(*settings, *agentFiles) (spawned, error) {
	f.mu.Lock()
	f.spawns = append(f.spawns, time.Now())
	b := f.behave(len(f.spawns))
	f.mu.Unlock()
	if b.spawnErr != nil {
		return spawned{}, b.spawnErr
	}
	started := time.Now()
	exited := make(chan Exit, 1)
	var once sync.Once
	exit := func(code int, sig syscall.Signal) {
		once.Do(func() {
			now := time.Now()
			e := Exit{Code: code, Time: now, Ran: now.Sub(started)}
			if sig != 0 {
				e.Code, e.Signal = -1, Signal(sig)
			}
			exited <- e
		})
	}
	if b.exitAfter > 0 {
		time.AfterFunc(b.exitAfter, func() { exit(b.code, 0) })
	}
	var n *notifySocket
	if b.notify != nil {
		n = &notifySocket{notifyState: newNotifyState()}
		sendAll(n, b.notify)
	}
	var mu sync.Mutex
	dead := false
	return spawned{pid: 1 << 30, started: started, exited: exited, notify: n,
		signal: func(sig syscall.Signal, group bool) error {
			mu.Lock()
			defer mu.Unlock()
			if dead {
				return os.ErrProcessDone
			}
			f.mu.Lock()
			f.signals = append(f.signals, time.Since(started).String()+" "+sig.String())
			f.mu.Unlock()
			switch {
			case sig == syscall.SIGKILL:
				dead = true
				exit(0, sig)
			case sig == syscall.SIGTERM && !b.ignoreTerm:
				time.AfterFunc(b.termDelay, func() { exit(0, sig) })
			case sig == syscall.SIGHUP && n != nil:
				sendAll(n, b.onHUP)
			}
			return nil
		}}, nil
}

// spawnOffsets returns the spawn attempts as offsets from the first.
func (f *fakeChildren) spawnOffsets() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, s := range f.spawns {
		out = append(out, s.Sub(f.spawns[0]))
	}
	return out
}

// fakeProcess builds a Process whose children are f's. Call it inside the
// synctest bubble.
func fakeProcess(t *testing.T, spec Spec, f *fakeChildren) *Process {
	t.Helper()
	spec.Name = "fake"
	spec.Path = agentPath
	spec.Logger = logr.Discard()
	cfg, err := spec.resolve(DefaultKinds())
	if err != nil {
		t.Fatal(err)
	}
	cfg.spawn = f.spawn
	return newFromSettings(cfg)
}

var errFakeSpawn = errors.New("fake spawn failure")

// spawnTimes returns the moments of the spawn attempts.
func (f *fakeChildren) spawnTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.spawns)
}

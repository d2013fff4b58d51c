//go:build linux

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// get fetches url with a fresh connection and returns the body.
func get(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A go-systemd agent finds the socket tend bound (LISTEN_PID is its own
// PID, LISTEN_FDNAMES the agent's name) and serves on it; the socket
// stays bound across restarts and is closed by Close.
func TestSocketActivation(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var out lockedWriter
	spec := agentSpec(t, "-sd-serve")
	spec.Listen = []string{fmt.Sprintf("tcp://127.0.0.1:%d", port), "unix://" + tempFile(t, "agent.sock")}
	spec.NotifyReady = true
	spec.Stdout, spec.Stderr = &out, &out
	p := newProcess(t, spec)
	for i := range 3 {
		if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil && !errors.Is(err, ErrAlreadyStarted) {
			t.Fatalf("start %d: %v\n%s", i, err, out.String())
		}
		body, err := get(url)
		if want := fmt.Sprintf("pid %d\n", p.Status().PID); err != nil || body != want {
			t.Fatalf("run %d: got %q, %v; want %q", i, body, err, want)
		}
		if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		// Stopped, the port is still tend's: a client's connection is
		// accepted by the kernel and waits for the next child.
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("connect while stopped: %v", err)
		}
		c.Close()
	}
	unixSock := strings.TrimPrefix(spec.Listen[1], "unix://")
	if err := p.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect after Close: %v, want refused", err)
	}
	if _, err := os.Stat(unixSock); !os.IsNotExist(err) {
		t.Fatalf("unix socket file after Close: %v", err)
	}
	if err := p.Start(ctxTimeout(t, time.Second)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start after Close: %v, want ErrNotFound", err)
	}
}

// A port another process holds makes the spawn fail with the address and
// the reason, and nothing is started.
func TestListenAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	spec := agentSpec(t, "-sd-serve")
	spec.Listen = []string{"tcp://" + l.Addr().String()}
	p := newProcess(t, spec)
	err = p.Start(ctxTimeout(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "listen tcp://"+l.Addr().String()) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start: %v, want the address and EADDRINUSE", err)
	}
}

// Bad listen entries are rejected by New, naming the entry.
func TestListenValidation(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"127.0.0.1:80", "listen[0]"},
		{"tcp://localhost:80", "IP address"},
		{"tcp://127.0.0.1:0", "port 0"},
		{"sctp://127.0.0.1:80", `network "sctp"`},
		{"unix://relative.sock", "absolute"},
	} {
		spec := agentSpec(t)
		spec.Listen = []string{tc.addr}
		_, err := New(spec)
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != "listen[0]" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listen %q: %v, want a field error on listen[0] saying %q", tc.addr, err, tc.want)
		}
	}
}

// Restarting an activated agent under a client that connects without
// pause refuses no connection; the same agent binding its own port does
// refuse some.
func TestActivatedRestartRefusesNothing(t *testing.T) {
	port := freePort(t)
	spec := agentSpec(t, "-sd-serve")
	spec.Listen = []string{fmt.Sprintf("tcp://127.0.0.1:%d", port)}
	spec.NotifyReady = true
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	c := scrapeDuring(fmt.Sprintf("http://127.0.0.1:%d/", port), func() {
		for i := range 10 {
			if err := p.Restart(ctxTimeout(t, 10*time.Second)); err != nil {
				t.Fatalf("restart %d: %v", i, err)
			}
		}
	})
	t.Logf("10 restarts: %+v", c)
	if c.refused != 0 || c.other != 0 || c.ok == 0 {
		t.Fatalf("%+v over 10 restarts; want no refused connection", c)
	}
}

// scrapeCounts are the outcomes of a client's requests.
type scrapeCounts struct {
	ok, refused int64
	// dropped were accepted by a child that then ended without an
	// answer (EOF, reset): the agent's shutdown, not the socket.
	dropped int64
	other   int64
	last    error // the latest of the others
}

// scrapeDuring fetches url from four clients without pause while during
// runs, and counts the outcomes.
func scrapeDuring(url string, during func()) scrapeCounts {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok, refused, dropped, others atomic.Int64
	var other atomic.Value
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, err := get(url)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET),
					strings.Contains(err.Error(), "server closed idle connection"): // net/http's name for an EOF before the answer
					dropped.Add(1)
				default:
					others.Add(1)
					other.Store(err)
				}
			}
		}()
	}
	during()
	cancel()
	wg.Wait()
	last, _ := other.Load().(error)
	return scrapeCounts{ok: ok.Load(), refused: refused.Load(), dropped: dropped.Load(), other: others.Load(), last: last}
}

// FDSTORE=1: the agent parks the socket it made; the next child gets it
// back as LISTEN_FDS with its name, and serves on it without binding. A
// requested Stop empties the store.
func TestFDStoreAcrossRestarts(t *testing.T) {
	port := freePort(t)
	var out lockedWriter
	spec := agentSpec(t, "-sd-store", fmt.Sprintf("127.0.0.1:%d", port))
	spec.NotifyReady = true
	spec.FDStoreMax = 4
	spec.Stdout, spec.Stderr = &out, &out
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for i := range 3 {
		if err := p.Restart(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatalf("restart %d: %v\n%s", i, err, out.String())
		}
		body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if want := fmt.Sprintf("pid %d\n", p.Status().PID); err != nil || body != want {
			t.Fatalf("after restart %d: %q, %v; want %q", i, body, err, want)
		}
	}
	if got := strings.Count(out.String(), "serving stored socket"); got != 3 || strings.Count(out.String(), "serving new socket") != 1 {
		t.Fatalf("want one new socket and three stored ones:\n%s", out.String())
	}
	if n := len(p.files.store.list()); n != 1 {
		t.Fatalf("store holds %d descriptors, want the one socket (stored again by each child, kept once)", n)
	}
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := len(p.files.store.list()); n != 0 {
		t.Fatalf("store holds %d descriptors after Stop, want none", n)
	}
}

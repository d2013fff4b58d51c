package edgedaemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tend-dev/tend/supervisor"
	"golang.org/x/sys/unix"
)

// The daemon upgrades in place, as nginx and haproxy do: on SIGUSR2, or a
// POST /upgrade, it hands its agents and its status API's socket over to
// a new binary (its own executable, which a package upgrade replaced, or
// the path posted) in the same process. No agent restarts, and no
// connection to the API is refused: the socket stays open across the
// exec, connections queue in its backlog and the new binary serves them.

// The names of the API's sockets among the files the daemon hands over.
const (
	apiListenerName   = "status-api"
	controlSocketName = "control-socket"
)

// inherited takes the socket the binary before this one handed over as
// name, if it did (ok), as the listener type L wants.
func inherited[L net.Listener](name, what string) (ln L, ok bool, err error) {
	f := supervisor.InheritedFile(name)
	if f == nil {
		return ln, false, nil
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return ln, true, fmt.Errorf("the %s handed over: %w", what, err)
	}
	if ln, ok = l.(L); !ok {
		l.Close()
		return ln, true, fmt.Errorf("the %s handed over is a %s socket", what, l.Addr().Network())
	}
	return ln, true, nil
}

// listenAPI opens the status API's socket, or takes the one the binary
// before this one handed over.
func listenAPI(addr string) (*net.TCPListener, error) {
	if ln, ok, err := inherited[*net.TCPListener](apiListenerName, "status API socket"); ok {
		return ln, err
	}
	addrTCP, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenTCP("tcp", addrTCP)
	if errors.Is(err, unix.EADDRINUSE) && addr == defaultListen {
		ln, err = net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}) // another user's daemon has 8080
	}
	return ln, err
}

// listenControl opens the control socket at path (mode 0600), or takes
// the one the binary before this one handed over. A socket file left by
// a daemon that died is replaced; one a live daemon answers on is not.
func listenControl(path string) (*net.UnixListener, error) {
	if ln, ok, err := inherited[*net.UnixListener](controlSocketName, "control socket"); ok {
		return ln, err
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another daemon answers on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// Connecting takes write permission, which the umask already denied
	// others; the peer check stands behind it anyway.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false) // a hand-over keeps the path; shutdown removes it
	return ln, nil
}

// socketListener is a socket the API serves, TCP or Unix: deadlines let
// a hand-over pause it, its file crosses the exec.
type socketListener interface {
	net.Listener
	SetDeadline(t time.Time) error
	File() (*os.File, error)
}

// apiServer serves the API on a socket it never closes, so that a
// hand-over can stop it (in-flight requests finish) and give the socket
// to the next binary, or serve again if the exec failed.
type apiServer struct {
	name    string // the socket's name among the files handed over
	ln      socketListener
	file    *os.File // the socket, for the hand-over
	handler http.Handler
	srv     *http.Server
	served  chan struct{} // closed when srv.Serve has returned
	conns   connTracker
}

func newAPIServer(name string, ln socketListener, handler http.Handler) (*apiServer, error) {
	f, err := ln.File()
	if err != nil {
		return nil, err
	}
	a := &apiServer{name: name, ln: ln, file: f, handler: handler}
	a.serve()
	return a, nil
}

func (a *apiServer) serve() {
	a.ln.SetDeadline(time.Time{}) //nolint:errcheck // TCP and Unix listeners have deadlines
	a.srv = &http.Server{Handler: a.handler, ReadHeaderTimeout: 5 * time.Second, ConnState: a.conns.track, ConnContext: peerContext}
	a.served = make(chan struct{})
	go func() {
		a.srv.Serve(&pausableListener{socketListener: a.ln}) //nolint:errcheck // ended by pause or close
		close(a.served)
	}()
}

// pause stops accepting and waits until every connection accepted has
// had its requests answered; the socket stays open, and what connects
// meanwhile waits in its backlog for the next binary. (http.Server's
// Shutdown does not do: a connection accepted just before it is closed
// unanswered once its request is read.)
func (a *apiServer) pause(ctx context.Context) error {
	a.srv.SetKeepAlivesEnabled(false)
	a.ln.SetDeadline(time.Unix(1, 0)) //nolint:errcheck // TCP and Unix listeners have deadlines
	select {
	case <-a.served:
	case <-ctx.Done():
		return ctx.Err()
	}
	return a.conns.settle(ctx)
}

// close shuts the API down for good.
func (a *apiServer) close(ctx context.Context) {
	a.srv.Shutdown(ctx) //nolint:errcheck // the deadline cuts what is left
	a.ln.Close()
	a.file.Close()
}

// connTracker knows the state of every connection of the API.
type connTracker struct {
	mu     sync.Mutex
	states map[net.Conn]http.ConnState
}

func (t *connTracker) track(c net.Conn, st http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.states == nil {
		t.states = map[net.Conn]http.ConnState{}
	}
	if st == http.StateClosed || st == http.StateHijacked {
		delete(t.states, c)
	} else {
		t.states[c] = st
	}
}

// settle waits until no connection is new or busy, then closes the idle
// ones (a client retries a request on an idle connection closed under it).
func (t *connTracker) settle(ctx context.Context) error {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		t.mu.Lock()
		busy := false
		for _, st := range t.states {
			busy = busy || st != http.StateIdle
		}
		if !busy {
			for c := range t.states {
				c.Close()
			}
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// pausableListener is the socket as http.Server sees it: pause's
// deadline ends Accept with net.ErrClosed, so Serve returns without the
// socket being closed; Close itself does the same.
type pausableListener struct {
	socketListener
}

func (l *pausableListener) Accept() (net.Conn, error) {
	c, err := l.socketListener.Accept()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *pausableListener) Close() error { return l.socketListener.SetDeadline(time.Unix(1, 0)) }

// upgradeRequest is the body of POST /upgrade, which may be empty.
type upgradeRequest struct {
	// Path is the new binary; the daemon's own executable if empty.
	Path string `json:"path"`
}

// upgradeHandler accepts POST /upgrade: it checks the binary, answers 202
// and queues the upgrade, which the daemon's main loop carries out once
// this request is answered.
func upgradeHandler(upgrades chan<- string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req upgradeRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) { // no body is {}
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
			return
		}
		path := req.Path
		if path == "" {
			path, _ = os.Executable()
		}
		if err := unix.Access(path, unix.X_OK); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("path %q: %v", path, err)})
			return
		}
		select {
		case upgrades <- path:
			writeJSON(w, http.StatusAccepted, map[string]string{"upgrading_to": path})
		default:
			writeJSON(w, http.StatusConflict, map[string]string{"error": "an upgrade is already under way"})
		}
	}
}

// upgrade hands the agents and the API sockets over to the binary at
// path. It returns only if that failed; the daemon then goes on as it
// was, serving again.
func (d *daemon) upgrade(ctx context.Context, path string, apis ...*apiServer) error {
	d.log.Info("upgrading in place: handing the agents over", "binary", path)
	files := map[string]*os.File{}
	for _, api := range apis {
		if err := api.pause(ctx); err != nil {
			d.log.Error(err, "API requests still under way at the upgrade", "socket", api.name)
		}
		files[api.name] = api.file
	}
	err := d.group.Handover(ctx, supervisor.Exec{Path: path, Files: files})
	for _, api := range apis {
		api.serve()
	}
	return err
}

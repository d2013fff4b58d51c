package supervisor

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
)

// listenAddress is one socket of Spec.Listen, parsed.
type listenAddress struct {
	raw     string // as written: the key of the bound socket
	network string // tcp, udp or unix
	addr    netip.AddrPort
	path    string // unix
}

// parseListen reads "tcp://127.0.0.1:9100", "tcp://[::1]:9100",
// "tcp://:9100" (every address), "udp://..." and "unix:///run/x.sock".
// Hosts must be IP literals: a name would be resolved once, silently.
func parseListen(s string) (listenAddress, error) {
	network, rest, ok := strings.Cut(s, "://")
	if !ok {
		return listenAddress{}, errors.New("want tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH")
	}
	a := listenAddress{raw: s, network: network}
	switch network {
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return a, errors.New("unix socket path must be absolute")
		}
		if len(rest) > 107 {
			return a, fmt.Errorf("unix socket path is %d bytes, over the 107 a socket path holds", len(rest))
		}
		a.path = rest
		return a, nil
	case "tcp", "udp":
		if strings.HasPrefix(rest, ":") {
			rest = "[::]" + rest
		}
		ap, err := netip.ParseAddrPort(rest)
		if err != nil {
			return a, fmt.Errorf("want an IP address and port: %w", err)
		}
		if ap.Port() == 0 {
			return a, errors.New("port 0: the agent's address would change with every bind")
		}
		a.addr = ap
		return a, nil
	}
	return a, fmt.Errorf("network %q: want tcp, udp or unix", network)
}

// agentFiles are what belongs to an agent rather than to one child: its
// activated listeners, its fd store and its cgroup. They outlive restarts
// and are closed by Process.Close (Group.Remove).
type agentFiles struct {
	mu        sync.Mutex
	listeners map[string]*os.File // by address as written
	store     fdStore
	box       *agentBox // a Group member's cgroup; set before the first spawn
}

// passed binds what addrs lists and is not bound yet, closes listeners no
// longer listed, and returns the descriptors the next child gets, in
// LISTEN_FDS order: the listeners as listed (named after the agent, as a
// systemd socket unit's are by default), then the stored ones.
func (f *agentFiles) passed(name string, addrs []listenAddress) ([]namedFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	want := make(map[string]bool, len(addrs))
	var out []namedFile
	for _, a := range addrs {
		want[a.raw] = true
		l := f.listeners[a.raw]
		if l == nil {
			var err error
			if l, err = a.bind(); err != nil {
				return nil, fmt.Errorf("listen %s: %w", a.raw, err)
			}
			if f.listeners == nil {
				f.listeners = make(map[string]*os.File)
			}
			f.listeners[a.raw] = l
		}
		out = append(out, namedFile{name: name, file: l})
	}
	for raw, l := range f.listeners {
		if !want[raw] {
			closeListener(l)
			delete(f.listeners, raw)
		}
	}
	return append(out, f.store.list()...), nil
}

// close releases every descriptor of the agent and removes its cgroup.
func (f *agentFiles) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for raw, l := range f.listeners {
		closeListener(l)
		delete(f.listeners, raw)
	}
	f.store.empty()
	return f.box.remove()
}

// closeListener closes a listener, removing its socket file if it has one.
func closeListener(l *os.File) {
	if strings.HasPrefix(l.Name(), "/") {
		os.Remove(l.Name())
	}
	l.Close()
}

package edgedaemon

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/go-logr/logr"
)

// The control API lets no one in by accident. Over TCP, reads (the page,
// /agents, /metrics) are open to a client that names this host by a
// loopback name or address; every other request (every change, and a
// read that names another host: a remote scraper, or a page elsewhere
// trying DNS rebinding) needs the bearer token of the daemon's token
// file, which only its user can read. Over the control socket, a
// Unix socket only that user can connect to, every request is allowed
// to the daemon's own user and root, as the kernel vouches for the peer
// (SO_PEERCRED), and refused to anyone else.

// tokenFileName is the bearer token's file in the data directory.
const tokenFileName = "api-token"

// loadToken reads the token file at path, or creates it (mode 0600, 32
// random bytes in hex) on the first start. A file others may read is
// refused: its token would let them in.
func loadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createToken(path)
	}
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		return "", fmt.Errorf("token file %s: mode %04o lets others read it; want 0600 (chmod 600 it)", path, mode)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", fmt.Errorf("token file %s: %d characters, want at least 16", path, len(token))
	}
	return token, nil
}

func createToken(path string) (string, error) {
	raw := make([]byte, 32)
	rand.Read(raw) //nolint:errcheck // crypto/rand.Read never fails
	token := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return token, nil
}

// peerKey is the context key of a control socket connection's peer.
type peerKey struct{}

// peer is who is at the other end of a control socket connection.
type peer struct {
	uid, pid int
	err      error // why the kernel did not say
}

// guard is the API's door: it lets a request through to next or refuses
// it, with 401 (no or a wrong token) or 403 (another user's process on
// the control socket), and logs each refusal with who asked.
type guard struct {
	token string
	uid   int // the daemon's own user
	log   logr.Logger
}

// readOnly reports whether a request only looks.
func readOnly(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

func (g guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := r.Context().Value(peerKey{}).(peer); ok {
			if p.err != nil || p.uid != g.uid && p.uid != 0 {
				g.refuse(w, r, http.StatusForbidden, fmt.Sprintf("peer uid %d is neither the daemon's user (%d) nor root", p.uid, g.uid), "peerUID", p.uid, "peerPID", p.pid)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if readOnly(r) && localHost(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		switch {
		case !ok:
			w.Header().Set("WWW-Authenticate", `Bearer realm="edge-daemon"`)
			g.refuse(w, r, http.StatusUnauthorized, "a bearer token is required (the token file "+tokenFileName+" in the data directory)")
		case subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) != 1:
			w.Header().Set("WWW-Authenticate", `Bearer realm="edge-daemon", error="invalid_token"`)
			g.refuse(w, r, http.StatusUnauthorized, "the bearer token is wrong")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (g guard) refuse(w http.ResponseWriter, r *http.Request, code int, why string, kv ...any) {
	slog.New(logr.ToSlogHandler(g.log)).Warn("API request refused", append([]any{"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", code, "why", why}, kv...)...)
	writeJSON(w, code, map[string]string{"error": why})
}

// localHost reports whether a Host header names the loopback interface,
// as a browser on this machine or curl against 127.0.0.1 sends it.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

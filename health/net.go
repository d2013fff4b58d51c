package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"time"
)

// HTTPGet is healthy when a GET of url answers 200-399. Redirects are
// followed only to the same host; every request uses a fresh connection, so
// an idle probe holds no socket and no goroutine.
func HTTPGet(url string) Probe {
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != via[0].URL.Host {
				return fmt.Errorf("redirect to another host %s refused", req.URL.Host)
			}
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
	return ProbeFunc(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // draining only
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

// TCPConnect is healthy when a TCP connection to addr ("host:port") opens.
func TCPConnect(addr string) Probe {
	return ProbeFunc(func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// Exec is healthy when the command exits 0. It runs in its own process
// group; when the check's context ends, the whole group is SIGKILLed, so a
// hung check script leaves nothing behind. The error carries the end of its
// output.
func Exec(path string, args ...string) Probe {
	return ProbeFunc(func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // ESRCH: the group is gone
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", path, ctx.Err())
			}
			return fmt.Errorf("%s: %w: %s", path, err, tail(out, 512))
		}
		return nil
	})
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

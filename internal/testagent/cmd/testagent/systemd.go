package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// The systemd service protocol spoken through go-systemd, as Go agents do.
var (
	sdServe  = flag.Bool("sd-serve", false, "serve HTTP (body: \"pid N\") on every socket go-systemd's activation.Listeners finds, then READY=1; exit 4 if there is none and no -sd-own-port")
	sdOwn    = flag.String("sd-own-port", "", "with -sd-serve and no activated socket, bind this address itself (the way agents do without socket activation)")
	sdReload = flag.Duration("sd-reload", -1, "with -sd-serve or -sd-store: on SIGHUP send RELOADING=1 with MONOTONIC_USEC, take this long, print \"reloaded\", send READY=1 (negative: SIGHUP is not handled)")
	sdStore  = flag.String("sd-store", "", "serve HTTP on the socket named \"web\" in LISTEN_FDNAMES if one was passed (printing \"serving stored socket\"), else listen on this address, park the socket with FDSTORE=1 FDNAME=web (printing \"serving new socket\"); then READY=1")
)

// runSystemd runs the go-systemd modes; it returns false when none is set.
func runSystemd() bool {
	if !*sdServe && *sdStore == "" {
		return false
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGHUP)
	if *sdReload < 0 {
		signal.Reset(syscall.SIGHUP)
	}
	var listeners []net.Listener
	var err error
	if *sdServe {
		listeners, err = activation.Listeners()
		if err == nil && len(listeners) == 0 && *sdOwn != "" {
			var l net.Listener
			l, err = net.Listen("tcp", *sdOwn)
			listeners = []net.Listener{l}
		}
		if err == nil && len(listeners) == 0 {
			fmt.Fprintln(os.Stderr, "no activated sockets (LISTEN_PID", os.Getenv("LISTEN_PID"), "LISTEN_FDS", os.Getenv("LISTEN_FDS")+")")
			os.Exit(4)
		}
	} else {
		var l net.Listener
		l, err = storedListener(*sdStore)
		listeners = []net.Listener{l}
	}
	if err != nil {
		fail(err)
	}
	body := "pid " + strconv.Itoa(os.Getpid()) + "\n"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
	for _, l := range listeners {
		go srv.Serve(l) //nolint:errcheck // ends at Shutdown
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		fail(err)
	}
	for sig := range signals {
		if sig == syscall.SIGTERM {
			// Finish the requests under way, as a well-behaved server
			// does; connections not yet accepted wait in the socket,
			// which tend keeps for the next child.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(ctx) //nolint:errcheck // exiting either way
			cancel()
			os.Exit(0)
		}
		daemon.SdNotify(false, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec()) //nolint:errcheck // tend's answer is what the test checks
		time.Sleep(*sdReload)
		fmt.Println("reloaded")
		daemon.SdNotify(false, daemon.SdNotifyReady) //nolint:errcheck // as above
	}
	return true
}

// storedListener takes the "web" socket tend handed back, or makes one and
// parks it in tend's fd store.
func storedListener(addr string) (net.Listener, error) {
	if files := activation.FilesWithNames()["web"]; len(files) > 0 {
		fmt.Println("serving stored socket")
		return net.FileListener(files[0])
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := storeFD(f, "web"); err != nil {
		return nil, err
	}
	fmt.Println("serving new socket")
	return l, nil
}

// storeFD sends FDSTORE=1 with f over NOTIFY_SOCKET (go-systemd has no
// call for it).
func storeFD(f *os.File, name string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return errors.New("no NOTIFY_SOCKET")
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Sendmsg(fd, []byte("FDSTORE=1\nFDNAME="+name), syscall.UnixRights(int(f.Fd())), &syscall.SockaddrUnix{Name: path}, 0)
}

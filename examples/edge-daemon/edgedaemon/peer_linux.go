package edgedaemon

import (
	"context"
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// peerContext records a Unix connection's peer credentials in the
// context of its requests (http.Server's ConnContext).
func peerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	p := peer{uid: -1}
	raw, err := uc.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) {
			var cred *unix.Ucred
			if cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				p.uid, p.pid = int(cred.Uid), int(cred.Pid)
			}
		})
		err = errors.Join(err, cerr)
	}
	p.err = err
	return context.WithValue(ctx, peerKey{}, p)
}

//go:build !linux

package edgedaemon

import (
	"context"
	"errors"
	"net"
)

// peerContext marks a Unix connection's peer as unknown: peer
// credentials are read on Linux only, so elsewhere the guard refuses
// every request on the control socket.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(*net.UnixConn); !ok {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, peer{uid: -1, err: errors.New("peer credentials are read on Linux only")})
}

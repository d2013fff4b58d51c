//go:build linux

package supervisor_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/supervisor"
)

// Socket activation: tend binds the agent's socket once and hands it to
// every child as fd 3 with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, the
// way sd_listen_fds(3) and go-systemd's activation package read them.
func ExampleSpec_listen() {
	dir, err := os.MkdirTemp("", "web")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	p, err := supervisor.New(supervisor.Spec{
		Name:         "web",
		Path:         "/bin/sh",
		Args:         []string{"-c", `[ "$LISTEN_PID" = $$ ] && echo "fds=$LISTEN_FDS names=$LISTEN_FDNAMES, LISTEN_PID is mine"`},
		Env:          []string{"PATH=/usr/bin:/bin"},
		Listen:       []string{"unix://" + dir + "/web.sock"}, // or "tcp://127.0.0.1:9100"
		StartSeconds: config.Duration(1),
		Restart:      supervisor.RestartSpec{Policy: supervisor.RestartNever},
		Stdout:       os.Stdout,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	defer p.Close(ctx) // closes the socket too
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := p.Wait(ctx)
	fmt.Println(st.State, st.LastExit)
	// Output:
	// fds=1 names=web, LISTEN_PID is mine
	// exited exit code 0
}

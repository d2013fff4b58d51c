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

// Hand-over: a host re-execs itself with its agents running on. Here the
// new binary is missing, so nothing is paused and the agent runs on,
// supervised by this binary as before.
func ExampleGroup_Handover() {
	g, err := supervisor.NewGroup(supervisor.GroupOptions{Containment: supervisor.Containment{Disabled: true}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close(context.Background())
	res, err := g.Apply(context.Background(), []supervisor.Spec{{Name: "sleeper", Path: "/bin/sleep", Args: []string{"60"}, StartSeconds: config.Duration(1)}})
	fmt.Println(res.Added, err)
	p, _ := g.Get("sleeper")
	pid := p.Status().PID
	err = g.Handover(context.Background(), supervisor.Exec{Path: "/nonexistent/edge-daemon"})
	fmt.Println(err)
	fmt.Println(p.Status().State, p.Status().PID == pid)
	// Output:
	// [sleeper] <nil>
	// hand-over: exec path "/nonexistent/edge-daemon": no such file or directory
	// running true
}

// Command basic supervises one agent: it prints the agent's output and every
// state change, restarts the agent when it crashes, and stops it on Ctrl-C.
//
//	go run ./examples/basic                 # a demo agent that crashes now and then
//	go run ./examples/basic -- ping -i 1 127.0.0.1
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/tend-dev/tend/supervisor"
)

const demoEnv = "TEND_BASIC_DEMO_AGENT"

func main() {
	if os.Getenv(demoEnv) != "" {
		demoAgent()
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "basic:", err)
		os.Exit(1)
	}
}

func run() error {
	spec := supervisor.Spec{Name: "demo", Stdout: os.Stdout, Stderr: os.Stderr}
	if args := os.Args[1:]; len(args) > 0 && args[0] == "--" {
		os.Args = append(os.Args[:1], args[1:]...)
	}
	if len(os.Args) > 1 {
		path, err := exec.LookPath(os.Args[1])
		if err != nil {
			return err
		}
		spec.Name, spec.Path, spec.Args, spec.InheritEnv = os.Args[1], path, os.Args[2:], true
	} else {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		spec.Path, spec.Env = self, []string{demoEnv + "=1"}
	}
	p, err := supervisor.New(spec)
	if err != nil {
		return err
	}
	defer p.Subscribe(func(e supervisor.Event) { fmt.Println("event:", e) })()

	// The host owns signal handling; tend never installs handlers.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := p.Stop(stopCtx); err != nil {
		return err
	}
	st := p.Status()
	fmt.Printf("%s is %s after %d restarts; last exit: %s\n", st.Name, st.State, st.Restarts, st.LastExit)
	return nil
}

// demoAgent prints a heartbeat line a second and crashes after a few.
func demoAgent() {
	for i := 1; ; i++ {
		fmt.Printf("demo agent %d: working (%d)\n", os.Getpid(), i)
		if i == 4 {
			fmt.Fprintln(os.Stderr, "demo agent: simulated crash")
			os.Exit(2)
		}
		time.Sleep(time.Second)
	}
}

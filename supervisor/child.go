package supervisor

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// child is one spawned instance of an agent: the leader of its own process
// group. Its waiter goroutine is the only code that reaps it; signals to the
// group are sent under mu and only while the leader is unreaped, so the
// group ID can never name a recycled group.
type child struct {
	proc    *os.Process
	pid     int
	started time.Time

	mu     sync.Mutex
	reaped bool

	pipes   []outputPipe
	copiers sync.WaitGroup
	notify  *notifySocket // with Spec.NotifyReady; closed after the exit
	tail    *tailBuffer
	done    chan Exit // receives exactly one Exit, then the waiter ends
}

// outputPipe is the parent's end of a stream tend drains.
type outputPipe struct {
	r    *os.File
	w    io.Writer // nil: only the tail sees the data
	name string
}

// spawn starts the agent in its own process group with stdin on /dev/null,
// starts draining its piped output and waiting for its exit. It must run on
// a goroutine tend owns (see Spec.ParentDeathSignal).
func spawn(s *settings) (*child, error) {
	c := &child{done: make(chan Exit, 1), tail: newTailBuffer(s.tailBytes)}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	parentCopies := []*os.File{stdin} // closed once the child has its own
	defer func() { closeFiles(parentCopies) }()
	env := s.env
	if s.notifyReady {
		if c.notify, err = newNotifySocket(); err != nil {
			return nil, fmt.Errorf("notify socket: %w", err)
		}
		env = append(append([]string(nil), env...), c.notify.env(s.watchdog)...)
	}

	files := []*os.File{stdin, nil, nil}
	for i, stream := range []struct {
		name string
		w    io.Writer
	}{{"stdout", s.stdout}, {"stderr", s.stderr}} {
		if f, ok := stream.w.(*os.File); ok {
			files[i+1] = f
			continue
		}
		if stream.w == nil && c.tail == nil {
			continue // nil file: the child gets /dev/null
		}
		r, w, err := os.Pipe()
		if err != nil {
			c.closePipes()
			c.notify.close()
			return nil, err
		}
		files[i+1] = w
		parentCopies = append(parentCopies, w)
		c.pipes = append(c.pipes, outputPipe{r: r, w: stream.w, name: stream.name})
	}
	proc, err := os.StartProcess(s.path, append([]string{s.path}, s.args...), &os.ProcAttr{
		Dir:   s.dir,
		Env:   env,
		Files: files,
		Sys:   sysProcAttr(s),
	})
	if err != nil {
		c.closePipes()
		c.notify.close()
		return nil, err
	}
	c.proc, c.pid, c.started = proc, proc.Pid, time.Now()
	if c.notify != nil {
		c.notify.pgid = c.pid
	}
	for _, p := range c.pipes {
		c.copiers.Add(1)
		go func() {
			defer c.copiers.Done()
			copyOutput(p.r, p.w, c.tail, p.name, s.log)
		}()
	}
	go c.wait(s)
	return c, nil
}

func (c *child) closePipes() {
	for _, p := range c.pipes {
		p.r.Close()
	}
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// signalGroup sends sig to every process in the child's group, unless the
// leader has been reaped (then the group ID may already be recycled).
func (c *child) signalGroup(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped {
		return os.ErrProcessDone
	}
	return syscall.Kill(-c.pid, sig)
}

// wait is the child's waiter goroutine: it learns of the leader's exit
// without reaping it, kills what is left of the group while the group ID is
// still pinned by the unreaped leader, reaps, waits until no live member of
// the group remains, finishes copying output, and delivers the Exit.
func (c *child) wait(s *settings) {
	var state *os.ProcessState
	var err error
	if werr := waitExitNoReap(c.pid, s.blockingWait, s.noteWaitFallback); werr == nil {
		c.mu.Lock()
		syscall.Kill(-c.pid, syscall.SIGKILL) //nolint:errcheck // ESRCH: nothing left
		state, err = c.proc.Wait()
		c.reaped = true
		c.mu.Unlock()
	} else {
		// Without a non-reaping wait the group is killed after the reap,
		// in waitGroupGone; never hold mu across a blocking Wait.
		s.log.V(1).Info("waiting without reaping failed; reaping directly", "error", werr.Error())
		state, err = c.proc.Wait()
		c.mu.Lock()
		c.reaped = true
		c.mu.Unlock()
	}
	exit := Exit{Time: time.Now(), Code: -1}
	exit.Ran = exit.Time.Sub(c.started)
	if err != nil {
		exit.Err = "wait: " + err.Error()
	} else {
		describeState(state, &exit)
	}
	waitGroupGone(c.pid, s)
	c.finishOutput()
	c.notify.close()
	exit.Tail = c.tail.String()
	c.done <- exit
}

// finishOutput waits for the copiers to reach EOF, which they do as soon as
// every process holding the pipes is gone; after drainTimeout it closes the
// pipes under them (a descendant escaped the group and kept them).
func (c *child) finishOutput() {
	if len(c.pipes) == 0 {
		return
	}
	finished := make(chan struct{})
	go func() { c.copiers.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(drainTimeout):
	}
	c.closePipes() // frees the fds, and unblocks copiers held by an escaped descendant
	<-finished
}

func describeState(state *os.ProcessState, exit *Exit) {
	ws, ok := state.Sys().(syscall.WaitStatus)
	if !ok {
		exit.Code = state.ExitCode()
		return
	}
	switch {
	case ws.Exited():
		exit.Code = ws.ExitStatus()
	case ws.Signaled():
		exit.Signal = Signal(ws.Signal())
		exit.CoreDumped = ws.CoreDump()
	}
}

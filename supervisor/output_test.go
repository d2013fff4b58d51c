package supervisor

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Every line reaches its writer, in order per stream, even though the
// child exits right after writing them.
func TestOutputDeliversEveryLineInOrder(t *testing.T) {
	var stdout, stderr lockedWriter
	spec := agentSpec(t, "-lines", "5000", "-stderr-lines", "3000", "-after", "1ms")
	spec.Restart.Policy = RestartNever
	spec.Stdout, spec.Stderr = &stdout, &stderr
	p := newProcess(t, spec)
	p.Start(ctxTimeout(t, 5*time.Second)) // may exit before StartSeconds
	st, err := p.Wait(ctxTimeout(t, 10*time.Second))
	if err != nil || st.State != Exited {
		t.Fatalf("wait: %v, %+v", err, st)
	}
	checkLines(t, "stdout", stdout.String(), "line %d", 5000)
	checkLines(t, "stderr", stderr.String(), "line err %d", 3000)
}

func checkLines(t *testing.T, stream, got, format string, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%s: %d lines, want %d", stream, len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf(format, i+1); l != want {
			t.Fatalf("%s line %d = %q, want %q", stream, i+1, l, want)
		}
	}
}

// An *os.File goes to the child directly: no pipe, no copy.
func TestOutputFileIsHandedToChild(t *testing.T) {
	f, err := os.Create(tempFile(t, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec := agentSpec(t, "-lines", "3", "-after", "100ms")
	spec.Restart.Policy = RestartNever
	spec.Stdout = f
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", p.Status().PID))
	if err != nil || target != f.Name() {
		t.Fatalf("child's stdout is %q (%v), want the file %q itself", target, err, f.Name())
	}
	p.Wait(ctxTimeout(t, 5*time.Second))
	b, _ := os.ReadFile(f.Name())
	if string(b) != "line 1\nline 2\nline 3\n" {
		t.Fatalf("file holds %q", b)
	}
}

// A writer that fails (a full disk) must neither block nor kill the child.
func TestFailingWriterNeitherBlocksNorKillsChild(t *testing.T) {
	var w failingWriter
	spec := agentSpec(t, "-lines", "20000", "-after", "300ms", "-exit", "0")
	spec.Restart.Policy = RestartNever
	spec.Stdout = &w
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, _ := p.Wait(ctxTimeout(t, 10*time.Second))
	if st.LastExit == nil || st.LastExit.Code != 0 || st.LastExit.Signal != 0 {
		t.Fatalf("child ended with %+v, want a clean exit 0 (no SIGPIPE)", st.LastExit)
	}
	if w.calls.Load() == 0 {
		t.Fatal("the writer was never called")
	}
}

// The end of the output rides on the exit: the crash tail.
func TestCrashTailOnExit(t *testing.T) {
	spec := agentSpec(t, "-exit", "3", "-after", "100ms", "-crash-output", "10000")
	spec.Restart.Policy = RestartNever
	spec.TailBytes = 1024
	p := newProcess(t, spec)
	if err := p.Start(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st, _ := p.Wait(ctxTimeout(t, 5*time.Second))
	tail := st.LastExit.Tail
	if len(tail) != 1024 || !strings.HasSuffix(tail, "xxxcrash\n") {
		t.Fatalf("tail is %d bytes ending %q, want 1024 ending in the crash line", len(tail), tail[max(0, len(tail)-20):])
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(8)
	for _, s := range []string{"abc", "defgh", "ij", "klmnopqrstu", "v"} {
		tb.Write([]byte(s))
	}
	if got := tb.String(); got != "opqrstuv" {
		t.Fatalf("tail %q, want the last 8 bytes %q", got, "opqrstuv")
	}
	if newTailBuffer(-1).String() != "" {
		t.Fatal("disabled tail is not empty")
	}
}

// slowWriter takes a while over every write, as a host's writer on a
// loaded disk does.
type slowWriter struct {
	lockedWriter
	delay time.Duration
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.lockedWriter.Write(p)
}

// What the child left in its pipe reaches a slow writer whole: the pipe
// is never closed under a copier that is still copying it.
func TestSlowWriterGetsEveryLineAfterExit(t *testing.T) {
	w := &slowWriter{delay: 300 * time.Millisecond}
	spec := agentSpec(t, "-lines", "20000", "-after", "1ms") // more than a pipe holds
	spec.Restart.Policy = RestartNever
	spec.Stdout = w
	p := newProcess(t, spec)
	p.Start(ctxTimeout(t, 5*time.Second)) // may exit before StartSeconds
	if st, err := p.Wait(ctxTimeout(t, 30*time.Second)); err != nil || st.State != Exited {
		t.Fatalf("wait: %v, %+v", err, st)
	}
	checkLines(t, "stdout", w.String(), "line %d", 20000)
}

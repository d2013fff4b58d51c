package supervisor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// handoverEnv names, in the new binary's environment, the descriptor of
// the memory file that holds the hand-over state.
const handoverEnv = "TEND_HANDOVER"

// beforeExec, when set (by tests), runs once every descriptor is ready
// to cross and just before the exec: the hand-over window.
var beforeExec func()

// execHandover writes st to a memory file, lets it and fds cross the
// exec, and execs path. It returns only if the exec failed, with every
// descriptor closed on exec again and the memory file closed.
func execHandover(path string, argv, env []string, st *handoverState, fds []int) error {
	memfd, err := unix.MemfdCreate("tend-handover", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("hand-over state: %w", err)
	}
	mem := os.NewFile(uintptr(memfd), "tend hand-over state")
	defer mem.Close()
	st.FDs = fds
	if err := json.NewEncoder(mem).Encode(st); err != nil {
		return fmt.Errorf("hand-over state: %w", err)
	}
	if _, err := mem.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("hand-over state: %w", err)
	}
	fds = append(fds[:len(fds):len(fds)], memfd)
	env = append(withoutVar(env, handoverEnv), handoverEnv+"="+strconv.Itoa(memfd))
	// No fork may happen while the descriptors are inheritable: a child
	// the host forks meanwhile (its own exec.Cmd) would keep them.
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := setInheritable(fds, true); err != nil {
		setInheritable(fds, false) //nolint:errcheck // as far as it goes; the first error is the one to report
		return err
	}
	if beforeExec != nil {
		beforeExec()
	}
	err = syscall.Exec(path, argv, env)
	setInheritable(fds, false) //nolint:errcheck // they were close-on-exec a moment ago and are still open
	return fmt.Errorf("exec %s: %w", path, err)
}

// setInheritable clears (or sets again) close-on-exec on each fd.
func setInheritable(fds []int, inherit bool) error {
	flag := unix.FD_CLOEXEC
	if inherit {
		flag = 0
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, flag); err != nil {
			return fmt.Errorf("hand-over: descriptor %d: %w", fd, err)
		}
	}
	return nil
}

func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// inherit reads what a previous binary handed this process, before any
// code of the host runs (so before it can fork): every descriptor named
// is made close-on-exec again, so no child of this binary inherits one,
// and the variable is removed from the environment, so no agent sees it.
func init() {
	v, ok := os.LookupEnv(handoverEnv)
	if !ok {
		return
	}
	os.Unsetenv(handoverEnv)
	inheritance.state, inheritance.err = readHandover(v)
	if inheritance.state == nil {
		return
	}
	inheritance.owned = takeInherited(inheritance.state.FDs)
	for name, fd := range inheritance.state.HostFiles {
		if inheritance.owned[fd] {
			inheritance.hostFiles[name] = os.NewFile(uintptr(fd), name)
		}
	}
}

// takeInherited makes close-on-exec again, and returns, those of fds
// that crossed the exec: open and inheritable. A number that is not (it
// did not cross, and something this binary opened since has it, with
// close-on-exec as Go opens everything) is never used nor closed.
func takeInherited(fds []int) map[int]bool {
	owned := make(map[int]bool, len(fds))
	for _, fd := range fds {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.CloseOnExec(fd)
			owned[fd] = true
		}
	}
	return owned
}

func readHandover(v string) (*handoverState, error) {
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", handoverEnv, v)
	}
	// The state is a memory file; anything else (a pipe that could
	// block the host's start for ever) is not read.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s=%d: not a hand-over state file", handoverEnv, fd)
	}
	unix.CloseOnExec(fd)
	mem := os.NewFile(uintptr(fd), "tend hand-over state")
	data, err := io.ReadAll(mem)
	mem.Close()
	if err != nil {
		return nil, fmt.Errorf("hand-over state: %w", err)
	}
	return parseHandover(data)
}

// parseHandover reads a hand-over state: the whole of it if it is this
// binary's version, else only its envelope, with the error that says why
// nothing else can be trusted.
func parseHandover(data []byte) (*handoverState, error) {
	st := &handoverState{}
	if err := json.Unmarshal(data, st); err == nil && st.Version == handoverVersion {
		return st, nil
	}
	// Another version, whose fields this binary may not even parse: only
	// the envelope, which every version writes alike.
	var envelope struct {
		Version   int            `json:"version"`
		FDs       []int          `json:"fds"`
		HostFiles map[string]int `json:"host_files"`
	}
	if err := json.Unmarshal(data, &envelope); err != nil {
		return nil, fmt.Errorf("hand-over state: %w", err)
	}
	st = &handoverState{Version: envelope.Version, FDs: envelope.FDs, HostFiles: envelope.HostFiles}
	if st.Version == handoverVersion {
		return st, fmt.Errorf("hand-over state of version %d does not parse", st.Version)
	}
	return st, fmt.Errorf("hand-over state of version %d; this binary reads version %d", st.Version, handoverVersion)
}

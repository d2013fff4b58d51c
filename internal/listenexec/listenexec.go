// Package listenexec is the exec trampoline through which tend starts an
// agent that is handed sockets (socket activation, the fd store).
//
// sd_listen_fds(3) and every library like it accept the descriptors only
// when LISTEN_PID equals the process's own PID, and a Go program cannot
// know a child's PID before the fork or run code between fork and exec to
// set it. So tend execs the host's own binary (/proc/self/exe) with a
// marker in the environment; this package's init, which runs before the
// host's main and before any init that depends on it, sees the marker,
// sets LISTEN_PID to its own PID (which exec keeps) and execs the agent.
// Nothing else of the host runs in the child.
package listenexec

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// marker is the environment entry that makes a process the trampoline.
const marker = "TEND_LISTEN_EXEC=1"

// Self is what the trampoline is executed as: the running binary, whatever
// its path (it may have been replaced or deleted since it started).
const Self = "/proc/self/exe"

// Command returns the argv and environment that make Self exec path with
// argv and env, LISTEN_PID added.
func Command(path string, argv, env []string) (trampolineArgv, trampolineEnv []string) {
	trampolineArgv = append([]string{"tend-listen-exec", path}, argv...)
	trampolineEnv = append(append(make([]string, 0, len(env)+1), env...), marker)
	return trampolineArgv, trampolineEnv
}

func init() {
	env := os.Environ()
	if len(env) == 0 || env[len(env)-1] != marker || len(os.Args) < 3 {
		return
	}
	env = append(env[:len(env)-1:len(env)-1], "LISTEN_PID="+strconv.Itoa(os.Getpid()))
	err := syscall.Exec(os.Args[1], os.Args[2:], withoutListenPID(env))
	os.Stderr.WriteString("tend: exec " + os.Args[1] + ": " + err.Error() + "\n")
	os.Exit(127)
}

// withoutListenPID drops a LISTEN_PID the agent's environment had, all
// but the last entry, which is the trampoline's own.
func withoutListenPID(env []string) []string {
	out := env[:0:0]
	for i, e := range env {
		if i < len(env)-1 && strings.HasPrefix(e, "LISTEN_PID=") {
			continue
		}
		out = append(out, e)
	}
	return out
}

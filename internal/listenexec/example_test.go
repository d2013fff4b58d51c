package listenexec_test

import (
	"fmt"

	"github.com/tend-dev/tend/internal/listenexec"
)

// The child is started as the host's own binary; its init execs the agent
// with LISTEN_PID set to the PID exec keeps.
func ExampleCommand() {
	argv, env := listenexec.Command("/usr/bin/agent", []string{"/usr/bin/agent", "-v"}, []string{"LISTEN_FDS=1"})
	fmt.Println(listenexec.Self, argv[1:])
	fmt.Println(env)
	// Output:
	// /proc/self/exe [/usr/bin/agent /usr/bin/agent -v]
	// [LISTEN_FDS=1 TEND_LISTEN_EXEC=1]
}

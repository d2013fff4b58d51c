package supervisor

import (
	"reflect"
	"syscall"
	"time"
)

// contract is everything a child is started with, and so everything the
// child itself sees of its settings. A running child keeps the contract it
// was spawned with; Group.Apply gives an agent a new child exactly when
// the contract changes and updates everything else in place. A setting
// the child sees belongs here, so that no list of "fields that need a
// restart" is kept by hand.
type contract struct {
	path, dir         string
	args, env         []string // env as the child gets it, inherited part included
	cred              *syscall.Credential
	parentDeathSignal syscall.Signal
	notifyReady       bool            // NOTIFY_SOCKET in env
	watchdog          time.Duration   // WATCHDOG_USEC in env
	listen            []listenAddress // LISTEN_FDS: the agent's sockets come first
}

func (c contract) equal(o contract) bool { return reflect.DeepEqual(c, o) }

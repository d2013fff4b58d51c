// Package tend lets a Go program supervise other programs: start them as
// child processes, notice at once when they die, restart them with backoff,
// stop them without leaving orphans, health-check them, rotate their logs and
// reconfigure them when their files change. It is a library, not a daemon:
// a host process (an edge agent, a node manager, an appliance's control
// daemon) imports the packages it needs and assembles them.
//
// The packages, each usable on its own:
//
//   - backoff: how long to wait before the n-th consecutive restart.
//   - supervisor: Process, one child's whole lifecycle (start criterion,
//     restart policy, stop escalation to SIGKILL of its process group,
//     events); Group, many children by name.
//   - config: the value types shared by decodable configuration (Duration
//     reads "30s"; FieldError names the key a user got wrong).
//
// A host daemon typically wires them like this:
//
//	p, err := supervisor.New(supervisor.Spec{
//		Name:   "node-exporter",
//		Path:   "/usr/bin/prometheus-node-exporter",
//		Stdout: logFile,
//		Restart: supervisor.RestartSpec{Policy: supervisor.RestartAlways},
//	})
//	if err != nil { ... }          // bad input is reported here, naming the field
//	if err := p.Start(ctx); err != nil { ... }
//	defer p.Stop(context.Background())
//
// tend is a polite guest in the host's process: no global state, no signal
// handlers, no reaping of children it did not start, no goroutine that
// outlives its owner, and logging only through the logr.Logger the host
// passes in.
package tend

// Package tend lets a Go program supervise other programs: start them as
// child processes, notice at once when they die, restart them with backoff,
// stop them without leaving orphans (each in a cgroup of its own where the
// host may create one, so that setsid'd and daemonized descendants and the
// leftovers of a crashed host are killed too; in its process group
// elsewhere), limit their memory, CPU and processes, health-check them,
// rotate their logs and
// reconfigure them when their files change. It is a library, not a daemon:
// a host process (an edge agent, a node manager, an appliance's control
// daemon) imports the packages it needs and assembles them.
//
// The packages, each usable on its own:
//
//   - supervisor: Process, one child's whole lifecycle (start criterion,
//     restart policy with backoff and restart limit, stop escalation to
//     SIGKILL of its cgroup or process group, crash tail, ordered events);
//     Group, many children by name, each contained in a cgroup with its
//     resource limits, reconciled with Apply, persisted through a Store.
//   - backoff: how long to wait before the n-th consecutive restart.
//   - health: probes (process alive, heartbeat, CPU and memory, HTTP, TCP,
//     exec), a Checker that acts when an agent turns unhealthy, and a
//     heartbeat server on a Unix socket.
//   - logs: rotating log files (size, time, gzip) written in whole lines,
//     and Tail and Search over them and their archives.
//   - reload: a config file Watcher, atomic rewrites of YAML and JSON
//     documents, and a Transaction that rolls back a change that fails.
//   - config: the value types shared by decodable configuration (Duration
//     reads "30s"; FieldError names the key a user got wrong; Merge applies
//     a merge patch, as agent_defaults need).
//
// A host daemon typically wires them like this (examples/edge-daemon does
// it in full):
//
//	logFile, _ := logs.New(logs.Options{Path: "/var/log/agents/node-exporter.log", Compress: true})
//	p, err := supervisor.New(supervisor.Spec{
//		Name:   "node-exporter",
//		Path:   "/usr/bin/prometheus-node-exporter",
//		Stdout: logFile.Stream("stdout"),
//		Stderr: logFile.Stream("stderr"),
//	})
//	if err != nil { ... }          // bad input is reported here, naming the field
//	if err := p.Start(ctx); err != nil { ... }
//	checker, _ := health.NewChecker(health.Config{},
//		health.Subject{Run: p.CurrentRun, Unhealthy: p.Unhealthy, Healthy: p.Healthy}, // the verdict goes through the restart decision
//		health.Check{Name: "metrics", Probe: health.HTTPGet("http://127.0.0.1:9100/metrics")})
//	go checker.Run(ctx)
//	defer p.Stop(context.Background())
//
// tend is a polite guest in the host's process: no global state, no signal
// handlers, no reaping of children it did not start, no goroutine that
// outlives its owner, and logging only through the logr.Logger the host
// passes in.
package tend

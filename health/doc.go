// Package health finds agents that are alive but not well: hung, silent,
// leaking memory or spinning a core.
//
// A Probe is one check: Check(ctx) returns nil when healthy and an error
// saying why not. The built-in probes: ProcessAlive (PID-reuse safe),
// Heartbeat (fed by Beat, or by a HeartbeatServer that agents report to
// over a Unix socket), Resources (CPU percent from the difference of CPU
// times between samples, and RSS, optionally of the whole process tree,
// over a threshold for a sustained time), HTTPGet, TCPConnect and Exec.
// ProbeFunc adapts any function.
//
// A Checker runs its probes every Interval after InitialDelay, each under
// Timeout and never twice at once; a probe turns unhealthy after
// FailureThreshold consecutive failures and healthy again after
// SuccessThreshold successes (the Kubernetes rules and defaults). When the
// agent turns unhealthy the Checker calls the host's action once, typically
// the supervisor's Restart, then waits Grace before judging the new
// instance. It knows nothing of the supervisor: probes get a PID source
// (func() int) or an address, and the action is the host's function.
package health

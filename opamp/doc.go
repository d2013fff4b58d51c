// Package opamp connects a tend supervisor.Group to a fleet's control
// plane over OpAMP, OpenTelemetry's Open Agent Management Protocol, as an
// OpAMP client built on opamp-go.
//
// In OpAMP's terms the host is the agent and its supervised agents are
// its components. The Bridge reports the host's description, one
// ComponentHealth entry per agent (healthy or not, its state, when its
// child started, its last exit), coalesced under bursts of transitions,
// the effective configuration (the host's config file as applied) and the
// status of the last remote configuration, and heartbeats at the
// interval the server asks for.
//
// A remote configuration is handled as no other supervisor does: it is
// validated as a local file would be (Config.Validate), written
// atomically to the host's config file, applied through the host's own
// Apply, and verified: every agent it changed must become ready within
// VerifyWindow and stay up for Settle (a crash loop that reached Running
// once is caught). If any step fails, the last good file is restored and
// applied again, the agents it did not change untouched, and the server
// gets FAILED with the reason; otherwise APPLIED. A configuration that
// arrives while one is being applied supersedes it: the one under way is
// rolled back, then the new one applied. The bridge executes nothing a
// server sends except through the host's Apply, and restarts agents on
// the server's restart command (every agent: the command has no target)
// or on a RestartCapability custom message naming one.
//
// The package is a Go module of its own, so that the core of tend does
// not pull in opamp-go's dependencies.
package opamp

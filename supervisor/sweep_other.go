//go:build !linux

package supervisor

import "github.com/go-logr/logr"

// sweepProcessGroups does nothing outside Linux: without /proc a recorded
// process cannot be told from a later one given the same PID, and a
// wrong kill is worse than a leftover.
func sweepProcessGroups(map[string]Record, logr.Logger) {}

// executable is unknown outside Linux.
func executable(int, uint64) string { return "" }

package supervisor

import (
	"fmt"
	"os"
	"syscall"

	"github.com/go-logr/logr"
)

// sweepProcessGroups kills the process groups a crashed instance of this
// host left running, as its Store recorded them, where there are no
// cgroups to find them by. A record is acted on only if its process is
// still the one recorded (PID, start time, executable) and still leads
// its group: a recycled PID is left alone. Descendants that left the
// group are out of reach here; that is what cgroups are for.
func sweepProcessGroups(records map[string]Record, log logr.Logger) {
	for _, r := range records {
		if r.PID <= 0 || r.LeaderStart == 0 || !r.State.hasChild() || !isRecordedLeader(r) {
			continue
		}
		if err := syscall.Kill(-r.PID, syscall.SIGKILL); err != nil {
			continue
		}
		log.Info("killed what a previous instance of this host left running", "agent", r.Name, "pgid", r.PID)
		waitGroupGone(r.PID, log)
	}
}

// executable is the binary pid runs, if it is still the process that
// started at ticks; empty otherwise (then no later host acts on it).
func executable(pid int, ticks uint64) string {
	if pid <= 0 || ticks == 0 {
		return ""
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || startTicks(pid) != ticks {
		return ""
	}
	return exe
}

// isRecordedLeader reports whether the recorded process is still alive
// as the leader of its group, started when recorded and running the
// recorded binary.
func isRecordedLeader(r Record) bool {
	return r.Exe != "" && isLiveMember(r.PID, r.PID) && executable(r.PID, r.LeaderStart) == r.Exe
}

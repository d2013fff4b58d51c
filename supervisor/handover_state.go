package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tend-dev/tend/internal/cgroup"
)

// handoverVersion is the version of the hand-over state this code writes
// and the only one it resumes from. A state of any other version is not
// trusted at all (see resumeUnknown).
const handoverVersion = 1

// handoverState is everything a Group hands to the binary it execs:
// written as JSON into a memory file whose descriptor, like every other
// one it names, crosses the exec. The envelope (Version, FDs, HostFiles)
// never changes shape, so that any version can close what an older or
// newer one handed it, and give the host its own files.
type handoverState struct {
	Version int `json:"version"`
	// FDs lists every descriptor the state refers to, to be closed by a
	// binary that cannot read the rest.
	FDs []int `json:"fds"`
	// HostFiles are the host's own descriptors (Exec.Files) by name.
	HostFiles map[string]int `json:"host_files,omitempty"`

	// The Group's instance locks and parent cgroup: held across the
	// exec, so that no other instance can take them in between and the
	// new binary does not sweep its own agents.
	CgroupParent string       `json:"cgroup_parent,omitempty"`
	CgroupLock   int          `json:"cgroup_lock,omitempty"`
	StoreLock    int          `json:"store_lock,omitempty"`
	Agents       []agentState `json:"agents"`
}

// agentState is one member as its owner paused it.
type agentState struct {
	Name string `json:"name"`
	// Contract is the digest of what the current child was started with
	// (contract.digest), so that the next Apply restarts it exactly when
	// the new binary would start it differently.
	Contract string `json:"contract"`
	Held     bool   `json:"held,omitempty"`
	Status   Status `json:"status"`

	Restarts    []time.Time `json:"restart_times,omitempty"` // within RestartWindow
	RecentExits []Exit      `json:"recent_exits,omitempty"`
	RestartAt   time.Time   `json:"restart_at,omitzero"` // Backoff's deadline
	RetryAt     time.Time   `json:"retry_at,omitzero"`   // RetryFailedAfter's
	StartAfter  bool        `json:"start_after,omitempty"`
	RestartFor  string      `json:"restart_for,omitempty"` // the pending restart's cause

	Child     *childState     `json:"child,omitempty"`
	Listeners []listenerState `json:"listeners,omitempty"`
	Stored    []storedState   `json:"stored,omitempty"`
	// Cgroup is the agent's cgroup directory, if it has one.
	Cgroup      string            `json:"cgroup,omitempty"`
	CgroupState cgroup.AgentState `json:"cgroup_state,omitzero"`
}

type listenerState struct {
	Raw  string `json:"raw"`
	Name string `json:"name"`
	FD   int    `json:"fd"`
}

type storedState struct {
	Name string `json:"name"`
	FD   int    `json:"fd"`
}

// childState is a live (or exited but unreaped) child and its run.
type childState struct {
	PID         int       `json:"pid"`
	PidFD       int       `json:"pidfd"`
	LeaderStart uint64    `json:"leader_start"`
	Exe         string    `json:"exe,omitempty"` // empty if it is a zombie
	Started     time.Time `json:"started"`
	Leaf        string    `json:"leaf,omitempty"`
	OOMBefore   uint64    `json:"oom_before,omitempty"`
	// LeaderReaped: the leader is gone and the child's end is its
	// MAINPID= successor's; PidFD is then -1.
	LeaderReaped bool `json:"leader_reaped,omitempty"`
	MainPID      int  `json:"main_pid,omitempty"`
	MainPidFD    int  `json:"main_pidfd,omitempty"`
	// Exit is the child's end, when it came before the child could be
	// detached: reported by whichever binary goes on, nothing else of
	// the child crosses.
	Exit *Exit `json:"exit,omitempty"`

	Streams []streamState `json:"streams,omitempty"`
	Tail    []byte        `json:"tail,omitempty"`
	Notify  *notifyCross  `json:"notify,omitempty"`

	Killing      killReason    `json:"killing,omitempty"`
	Stopping     bool          `json:"stopping,omitempty"`
	ReloadSent   bool          `json:"reload_sent,omitempty"`
	Watchdog     time.Duration `json:"watchdog,omitempty"`
	Unhealthy    string        `json:"unhealthy,omitempty"`
	ProbeFailure string        `json:"probe_failure,omitempty"`
	Reload       *reloadCross  `json:"reload,omitempty"`
	Said         snapshotCross `json:"said"`

	// The run's timers as absolute deadlines; zero is not armed.
	ReadyAt  time.Time `json:"ready_at,omitzero"`
	StableAt time.Time `json:"stable_at,omitzero"`
	KillAt   time.Time `json:"kill_at,omitzero"`
	DogAt    time.Time `json:"dog_at,omitzero"`
	ReloadAt time.Time `json:"reload_at,omitzero"`
}

// streamState is a piped stream: the pipe's read end and the bytes of
// an unfinished line its writer gave up (see partialHolder).
type streamState struct {
	Name    string `json:"name"`
	FD      int    `json:"fd"`
	Pending []byte `json:"pending,omitempty"`
}

// notifyCross is the child's notify socket and what it has said.
type notifyCross struct {
	FD     int           `json:"fd"`
	Dir    string        `json:"dir"`
	Values snapshotCross `json:"values"`
}

type reloadCross struct {
	SentSeq  uint64        `json:"sent_seq"`
	SentMono time.Duration `json:"sent_mono"`
	Acked    bool          `json:"acked,omitempty"`
}

// snapshotCross is a notifySnapshot in a form JSON keeps.
type snapshotCross struct {
	Seq           uint64         `json:"seq,omitempty"`
	ReadySeq      uint64         `json:"ready_seq,omitempty"`
	ReloadingSeq  uint64         `json:"reloading_seq,omitempty"`
	ReloadingMono time.Duration  `json:"reloading_mono,omitempty"`
	Stopping      bool           `json:"stopping,omitempty"`
	Status        *string        `json:"status,omitempty"`
	MainPID       int            `json:"main_pid,omitempty"`
	Triggered     bool           `json:"triggered,omitempty"`
	ExtendTo      time.Time      `json:"extend_to,omitzero"`
	Watchdog      *time.Duration `json:"watchdog,omitempty"`
	LastKeepalive time.Time      `json:"last_keepalive,omitzero"`
	Errno         int            `json:"errno,omitempty"`
	ExitStatus    *int           `json:"exit_status,omitempty"`
}

func (s notifySnapshot) cross() snapshotCross {
	return snapshotCross{s.seq, s.readySeq, s.reloadingSeq, s.reloadingMono, s.stopping, s.status,
		s.mainPID, s.triggered, s.extendTo, s.watchdog, s.lastKeepalive, s.errno, s.exitStatus}
}

func (c snapshotCross) snapshot() notifySnapshot {
	return notifySnapshot{c.Seq, c.ReadySeq, c.ReloadingSeq, c.ReloadingMono, c.Stopping, c.Status,
		c.MainPID, c.Triggered, c.ExtendTo, c.Watchdog, c.LastKeepalive, c.Errno, c.ExitStatus}
}

// digest names the contract in the hand-over state: equal contracts have
// equal digests, and a binary that would start the child differently
// (another path, env, user, sockets...) computes another.
func (c contract) digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %q %q %d %t %d", c.path, c.dir, c.args, c.env, c.parentDeathSignal, c.notifyReady, c.watchdog)
	if c.cred != nil {
		fmt.Fprintf(h, " cred %d %d %v %t", c.cred.Uid, c.cred.Gid, c.cred.Groups, c.cred.NoSetGroups)
	}
	for _, l := range c.listen {
		fmt.Fprintf(h, " listen %q", l.raw)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rearm arms t for when, if set.
func (t *timer) rearm(when time.Time) {
	if !when.IsZero() {
		t.at(when)
	}
}

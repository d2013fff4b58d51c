package supervisor

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/tend-dev/tend/config"
)

// TaskSpec makes an agent a task: a program whose successful exit is its
// goal (a migration, a certificate fetch, an inventory scan), as systemd's
// Type=oneshot. A task's run is Starting while it runs and Completed once
// it exits with success (0 or a restart.success_exit_codes code); Start
// returns nil then. A failed run is restarted under the restart policy
// (on-failure by default; always is refused), through the backoff and the
// restart limit as an agent's crash is. In a config file it is `task:
// {timeout: 5m, schedule: "@hourly"}`, or `task: true` for a plain one.
type TaskSpec struct {
	// Timeout kills a run still going after this long; the run counts as
	// failed ("task timeout"). Zero: no limit.
	Timeout config.Duration `json:"timeout,omitempty"`
	// Schedule runs the task at due times, in cron syntax (five fields,
	// "0 * * * *"; descriptors "@hourly", "@daily"; "@every 5m"; a
	// "CRON_TZ=Europe/Berlin " prefix for a time zone; local time
	// otherwise). Start then arms the schedule instead of running the
	// task, and Stop disarms it. A run due while the previous one (or its
	// retries) is still under way is skipped and logged: runs never
	// overlap. With a Group's Store, a run missed while the host was down
	// runs once at the next Start (systemd's Persistent=true). Empty: the
	// task runs when it is started.
	Schedule string `json:"schedule,omitempty"`
	// Jitter delays each scheduled run by a random time up to this long,
	// so that a fleet of hosts on the same schedule does not run it at
	// the same moment (systemd's RandomizedDelaySec). Zero: none.
	Jitter config.Duration `json:"jitter,omitempty"`
}

// UnmarshalJSON reads a TaskSpec object strictly, or true for a task
// with no options.
func (t *TaskSpec) UnmarshalJSON(b []byte) error {
	var flag bool
	if json.Unmarshal(b, &flag) == nil {
		if !flag {
			return fmt.Errorf("task: false: leave the key out for an agent that is not a task")
		}
		*t = TaskSpec{}
		return nil
	}
	type plain TaskSpec // without this method
	if err := decodeObject(b, (*plain)(t)); err != nil {
		return fmt.Errorf("task %s: want true or {timeout, schedule, jitter}: %w", b, err)
	}
	return nil
}

// taskSettings is a validated TaskSpec.
type taskSettings struct {
	spec     TaskSpec // as given, to tell a changed schedule
	timeout  time.Duration
	schedule cron.Schedule // nil: run when started
	jitter   time.Duration
}

// cronParser reads TaskSpec.Schedule: the five standard fields and the
// descriptors, as cron(8) and systemd users write them.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// resolveTask validates the task keys of s into out.
func (s Spec) resolveTask(out *settings) error {
	t := s.Task
	if t == nil {
		return nil
	}
	switch {
	case s.Restart.Policy == RestartAlways:
		return config.Invalid("restart.policy", s.Restart.Policy, `a task's successful exit is its goal: use "on-failure" (the default for a task) or "never"`)
	case s.NotifyReady:
		return config.Invalid("notify_ready", true, "a task is done when it exits; it has no readiness to report")
	case s.Ready != nil:
		return config.Invalid("ready", "a probe", "a task is done when it exits; it has no readiness to probe")
	case t.Timeout < 0:
		return config.Invalid("task.timeout", t.Timeout, "must not be negative")
	case t.Jitter < 0:
		return config.Invalid("task.jitter", t.Jitter, "must not be negative")
	case t.Jitter > 0 && t.Schedule == "":
		return config.Invalid("task.jitter", t.Jitter, "needs task.schedule")
	}
	ts := &taskSettings{spec: *t, timeout: t.Timeout.Std(), jitter: t.Jitter.Std()}
	if t.Schedule != "" {
		sched, err := cronParser.Parse(t.Schedule)
		if err != nil {
			return config.Invalid("task.schedule", fmt.Sprintf("%q", t.Schedule), err.Error())
		}
		if sched.Next(time.Now()).IsZero() {
			return config.Invalid("task.schedule", fmt.Sprintf("%q", t.Schedule), "is never due")
		}
		ts.schedule = sched
	}
	out.task = ts
	return nil
}

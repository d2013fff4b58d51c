package supervisor

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tend-dev/tend/config"
)

// Condition is what an agent needs of one of its dependencies before it
// starts (Spec.DependsOn).
type Condition string

// The conditions, after process-compose's depends_on and systemd's
// After=/Requires=.
const (
	// ConditionStarted holds once the dependency's child is spawned
	// (Starting or Running), or a task's run has completed.
	ConditionStarted Condition = "started"
	// ConditionReady holds while the dependency is Running (its start
	// criterion met: StartSeconds, the Ready probe or READY=1), or a
	// task has Completed.
	ConditionReady Condition = "ready"
	// ConditionHealthy holds while the dependency is Running and its
	// current run was reported healthy (Process.Healthy, which a health
	// Checker calls through health.Subject.Healthy). Without a Checker
	// that reports, it never holds.
	ConditionHealthy Condition = "healthy"
	// ConditionCompleted holds once a task has ended and will not run
	// again by itself: Completed, Exited or Failed.
	ConditionCompleted Condition = "completed"
	// ConditionCompletedSuccessfully holds once a task has Completed.
	ConditionCompletedSuccessfully Condition = "completed_successfully"
)

var conditions = []Condition{ConditionStarted, ConditionReady, ConditionHealthy, ConditionCompleted, ConditionCompletedSuccessfully}

// Propagation says what happens to a running dependent when its
// dependency goes down.
type Propagation string

// The propagations.
const (
	// PropagateNone (the default, also "") leaves the dependent alone
	// once it has started: it needed the dependency to start, not to run.
	PropagateNone Propagation = "none"
	// PropagateRestart restarts the dependent with its dependency, as
	// Erlang's rest_for_one and systemd's PartOf=: when the dependency's
	// run ends (a crash, a requested restart or stop) the dependent is
	// stopped, and it starts again once the condition holds again,
	// against the dependency's new run.
	PropagateRestart Propagation = "restart"
	// PropagateStop stops the dependent while its dependency is down for
	// good (Stopped, Exited, Failed, or Waiting itself), as systemd's
	// BindsTo=, and starts it again once the condition holds; a
	// dependency that is only restarting (Backoff, Starting) leaves it
	// running.
	PropagateStop Propagation = "stop"
)

var propagations = []Propagation{PropagateNone, PropagateRestart, PropagateStop}

// Dependency is one entry of Spec.DependsOn. In a config file it is the
// condition alone (`collector: ready`) or an object (`collector:
// {condition: ready, propagate: restart}`).
type Dependency struct {
	// Condition must hold before the dependent starts; empty means
	// ConditionStarted.
	Condition Condition `json:"condition,omitempty"`
	// Propagate says what the dependency's going down does to the running
	// dependent; empty means PropagateNone.
	Propagate Propagation `json:"propagate,omitempty"`
}

// UnmarshalJSON reads a condition's name or a {condition, propagate}
// object, strictly.
func (d *Dependency) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*d = Dependency{Condition: Condition(name)}
		return nil
	}
	type plain Dependency // without this method
	if err := decodeObject(b, (*plain)(d)); err != nil {
		return fmt.Errorf("dependency %s: want a condition such as \"ready\" or {condition, propagate}: %w", b, err)
	}
	return nil
}

// decodeObject decodes the JSON object b into v, refusing unknown keys
// (the short forms above cannot go through decode.Strict's own check).
func decodeObject(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// check validates d as the dependency on name.
func (d Dependency) check(name string) error {
	key := "depends_on." + name
	if err := validateName(key, name); err != nil {
		return err
	}
	if d.Condition != "" && !slices.Contains(conditions, d.Condition) {
		return config.Invalid(key+".condition", d.Condition, "must be one of "+quoteAll(conditions))
	}
	if d.Propagate != "" && !slices.Contains(propagations, d.Propagate) {
		return config.Invalid(key+".propagate", d.Propagate, "must be one of "+quoteAll(propagations))
	}
	return nil
}

func quoteAll[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(quoted, ", ")
}

// dependency is a validated Dependency on the agent called name.
type dependency struct {
	name      string
	condition Condition
	propagate Propagation
}

// resolveDependencies validates DependsOn and returns it in name order.
func resolveDependencies(in map[string]Dependency, self string) ([]dependency, error) {
	var out []dependency
	for _, name := range slices.Sorted(maps.Keys(in)) {
		d := in[name]
		if err := d.check(name); err != nil {
			return nil, err
		}
		if name == self {
			return nil, config.Invalid("depends_on."+name, name, "an agent cannot depend on itself")
		}
		out = append(out, dependency{name: name, condition: cmp.Or(d.Condition, ConditionStarted), propagate: cmp.Or(d.Propagate, PropagateNone)})
	}
	return out, nil
}

// holds reports whether st meets c.
func (c Condition) holds(st Status) bool {
	switch c {
	case ConditionStarted:
		return st.State == Starting || st.State == Running || st.State == Completed
	case ConditionReady:
		return st.State == Running || st.State == Completed
	case ConditionHealthy:
		return st.State == Running && st.Healthy
	case ConditionCompleted:
		return st.State == Completed || st.State == Exited || st.State == Failed
	default: // ConditionCompletedSuccessfully
		return st.State == Completed
	}
}

// hopeless reports whether st, which does not meet c, cannot come to
// meet it by itself: the dependency gave up (Failed) or ended for good
// (Exited).
func (c Condition) hopeless(st Status) bool {
	return c != ConditionCompleted && (st.State == Failed || st.State == Exited)
}

// down reports whether st is down for good, as PropagateStop means it.
func down(st Status) bool {
	return st.State == Stopped || st.State == Exited || st.State == Failed || st.State == Waiting
}

// dependencies are an agent's dependencies as its Group sees them.
type dependencies struct {
	list []dependency
	// status returns the named member's Status and whether it is off
	// (disabled or held: only the operator starts it); ok is false if
	// there is no such member.
	status func(name string) (st Status, off, ok bool)
}

// wait says what the agent is waiting for ("" when every dependency
// holds), and, when one cannot come to hold by itself, why as an error.
func (d *dependencies) wait() (waitingFor string, hopeless error) {
	if d == nil {
		return "", nil
	}
	var parts, lost []string
	for _, dep := range d.list {
		st, off, ok := d.status(dep.name)
		switch {
		case !ok:
			parts = append(parts, fmt.Sprintf("%s (%s): not in the Group", dep.name, dep.condition))
		case dep.condition.holds(st):
			continue
		default:
			where := fmt.Sprintf("%s (%s): %s", dep.name, dep.condition, notReady(st))
			if off && st.State == Stopped {
				where += " (disabled or stopped by the operator)"
			}
			parts = append(parts, where)
			if dep.condition.hopeless(st) || off && st.State == Stopped {
				lost = append(lost, where)
			}
		}
	}
	if len(lost) > 0 {
		hopeless = fmt.Errorf("dependency will not come up by itself: %s", strings.Join(lost, "; "))
	}
	return strings.Join(parts, "; "), hopeless
}

// runs notes the run of each dependency that the agent's new child
// starts against.
func (d *dependencies) runs() map[string]uint64 {
	if d == nil {
		return nil
	}
	out := make(map[string]uint64, len(d.list))
	for _, dep := range d.list {
		if st, _, ok := d.status(dep.name); ok {
			out[dep.name] = st.Run
		}
	}
	return out
}

// propagated says why the agent's child, started against the runs
// given, must stop because of a dependency (see Propagation), or "".
func (d *dependencies) propagated(started map[string]uint64) (Reason, string) {
	if d == nil {
		return "", ""
	}
	for _, dep := range d.list {
		st, _, ok := d.status(dep.name)
		run, known := started[dep.name]
		if ok && !known { // a dependency claimed after this child was (a hand-over): its run now
			started[dep.name], run = st.Run, st.Run
		}
		switch {
		case dep.propagate == PropagateRestart && (!ok || st.Run != run || !dep.condition.holds(st)):
			return ReasonDependencyRestarted, dep.name
		case dep.propagate == PropagateStop && (!ok || down(st)):
			return ReasonDependencyDown, dep.name
		}
	}
	return "", ""
}

package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/supervisor"
)

// descs are the Collector's metric descriptors, named after Prometheus'
// conventions: base units (seconds, bytes), _total on counters.
type descs struct {
	up, state, restarts, startTime, exitCode, exitSignal, backoff *prometheus.Desc
	cpu, memory, processes                                        *prometheus.Desc
	probeHealthy, checkDuration, checkFailures, verdicts          *prometheus.Desc
	logWritten, logDroppedBytes, logDroppedLines, rotations       *prometheus.Desc
	logErrors, eventsDropped                                      *prometheus.Desc

	statePairs  []*dto.LabelPair          // state="...", by State
	reasonPairs map[string]*dto.LabelPair // reason="...", by restart cause
}

func newDescs(ns string) descs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
	}
	agent, probe, file := "agent", "probe", "file"
	all := descs{
		up:         d("agent_up", "1 while the agent is Running, 0 otherwise.", agent),
		state:      d("agent_state", "1 for the state the agent is in, 0 for the others.", agent, "state"),
		restarts:   d("agent_restarts_total", "Restarts of the agent by cause: crash, unhealthy, oom (automatic), requested, dependency.", agent, "reason"),
		startTime:  d("agent_start_time_seconds", "When the agent's current child was spawned, in seconds since the epoch; absent while none runs.", agent),
		exitCode:   d("agent_last_exit_code", "Exit code of the agent's last child, -1 if a signal ended it or it never started.", agent),
		exitSignal: d("agent_last_exit_signal", "Number of the signal that ended the agent's last child, 0 if none.", agent),
		backoff:    d("agent_backoff_seconds_total", "Time the agent has spent in Backoff, waiting to be restarted.", agent),

		cpu:       d("agent_cpu_seconds_total", "CPU time used by the agent's whole process tree (contained agents).", agent),
		memory:    d("agent_memory_bytes", "Memory charged to the agent's whole process tree, page cache included (contained agents whose cgroup accounts memory).", agent),
		processes: d("agent_processes", "Live processes in the agent's whole process tree (contained agents).", agent),

		probeHealthy:  d("health_probe_healthy", "1 while the probe is judged healthy and the agent can be judged, 0 otherwise.", agent, probe),
		checkDuration: d("health_check_duration_seconds", "How long the probe's checks took.", agent, probe),
		checkFailures: d("health_check_failures_total", "Checks of the probe that failed.", agent, probe),
		verdicts:      d("health_verdicts_total", "Unhealthy verdicts the agent's Checker gave the supervisor.", agent),

		logWritten:      d("log_written_bytes_total", "Bytes written to the agent's log file.", agent, file),
		logDroppedBytes: d("log_dropped_bytes_total", "Bytes of the agent's output lost to write errors (a full disk).", agent, file),
		logDroppedLines: d("log_dropped_lines_total", "Lines of the agent's output lost, whole or cut short, to write errors.", agent, file),
		rotations:       d("log_rotations_total", "Rotations of the agent's log file.", agent, file),
		logErrors:       d("log_errors_total", "Failed writes and rotations of the agent's log file.", agent, file),

		eventsDropped: d("events_dropped_total", "Events that slow subscribers of the Group and its agents lost."),

		reasonPairs: map[string]*dto.LabelPair{},
	}
	for _, s := range supervisor.States() {
		all.statePairs = append(all.statePairs, pair("state", s.String()))
	}
	for cause := range (supervisor.RestartCounts{}).All() {
		all.reasonPairs[cause] = pair("reason", cause)
	}
	return all
}

func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.up, d.state, d.restarts, d.startTime, d.exitCode, d.exitSignal, d.backoff,
		d.cpu, d.memory, d.processes, d.probeHealthy, d.checkDuration, d.checkFailures, d.verdicts,
		d.logWritten, d.logDroppedBytes, d.logDroppedLines, d.rotations, d.logErrors, d.eventsDropped}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// agent sends what the agent's Status says.
func (d *descs) agent(b *batch, name *dto.LabelPair, st supervisor.Status, now time.Time) {
	b.gauge(d.up, bit(st.State == supervisor.Running), name)
	for i, s := range d.statePairs {
		b.gauge(d.state, bit(st.State == supervisor.State(i)), name, s)
	}
	for cause, n := range st.RestartsBy.All() {
		b.counter(d.restarts, float64(n), name, d.reasonPairs[cause])
	}
	if st.PID != 0 && !st.StartedAt.IsZero() {
		b.gauge(d.startTime, float64(st.StartedAt.UnixNano())/1e9, name)
	}
	if x := st.LastExit; x != nil {
		b.gauge(d.exitCode, float64(x.Code), name)
		b.gauge(d.exitSignal, float64(x.Signal), name)
	}
	backoff := st.InBackoff
	if st.State == supervisor.Backoff {
		backoff += now.Sub(st.StateSince)
	}
	b.counter(d.backoff, backoff.Seconds(), name)
}

// tree sends what the agent's whole process tree uses.
func (d *descs) tree(b *batch, name *dto.LabelPair, u supervisor.TreeUsage) {
	b.counter(d.cpu, u.CPU.Seconds(), name)
	b.gauge(d.processes, float64(u.Processes), name)
	if slices.Contains(u.Accounted, "memory") {
		b.gauge(d.memory, float64(u.MemoryBytes), name)
	}
}

// health sends a Checker's probes.
func (d *descs) health(b *batch, name *dto.LabelPair, r health.Report) {
	for _, p := range r.Probes {
		probe := pair("probe", p.Name)
		b.gauge(d.probeHealthy, bit(r.Applicable && p.Healthy), name, probe)
		b.summary(d.checkDuration, uint64(p.Checks), p.CheckTime.Seconds(), name, probe)
		b.counter(d.checkFailures, float64(p.CheckFailures), name, probe)
	}
	b.counter(d.verdicts, float64(r.Verdicts), name)
}

// log sends a Rotator's counters.
func (d *descs) log(b *batch, name, file *dto.LabelPair, s logs.Stats) {
	b.counter(d.logWritten, float64(s.BytesWritten), name, file)
	b.counter(d.logDroppedBytes, float64(s.BytesDropped), name, file)
	b.counter(d.logDroppedLines, float64(s.LinesDropped), name, file)
	b.counter(d.rotations, float64(s.Rotations), name, file)
	b.counter(d.logErrors, float64(s.Errors), name, file)
}

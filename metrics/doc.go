// Package metrics exports a supervisor.Group as Prometheus metrics: a
// prometheus.Collector that reads the Group's snapshots at scrape time,
// with the health Checkers and log Rotators the host registers beside it.
//
// It is the only package of tend that imports client_golang: a host that
// does not import it does not link it.
//
// The metrics (with the default Namespace), each labelled with the agent's
// name ("agent"):
//
//	tend_agent_up                          gauge    1 while Running
//	tend_agent_state{state}                gauge    1 for the current state, 0 for the others
//	tend_agent_restarts_total{reason}      counter  crash, unhealthy, oom, requested, dependency
//	tend_agent_start_time_seconds          gauge    the current child's spawn (absent while none runs)
//	tend_agent_last_exit_code              gauge    -1 for a signal or a failed spawn
//	tend_agent_last_exit_signal            gauge    0 for none
//	tend_agent_backoff_seconds_total       counter  time spent waiting to be restarted
//	tend_agent_cpu_seconds_total           counter  the whole tree's CPU (contained agents)
//	tend_agent_memory_bytes                gauge    the whole tree's memory (where the cgroup accounts it)
//	tend_agent_processes                   gauge    the whole tree's live processes (contained agents)
//	tend_health_probe_healthy{probe}       gauge    the probe's judged state
//	tend_health_check_duration_seconds{probe} summary  count and sum of the checks' durations
//	tend_health_check_failures_total{probe}   counter
//	tend_health_verdicts_total             counter  unhealthy verdicts given
//	tend_log_written_bytes_total{file}     counter  bytes that reached the log file
//	tend_log_dropped_bytes_total{file}     counter  bytes lost to write errors (a full disk)
//	tend_log_dropped_lines_total{file}     counter  lines lost, whole or cut short
//	tend_log_rotations_total{file}         counter
//	tend_log_errors_total{file}            counter  failed writes and rotations
//	tend_events_dropped_total              counter  (no agent label) events slow subscribers lost
//
// Restarts by cause sum to Status.Restarts for crash, unhealthy and oom;
// alert on a crash loop with rate(tend_agent_restarts_total[15m]) > 0 or
// on tend_agent_state{state="failed"} == 1.
package metrics

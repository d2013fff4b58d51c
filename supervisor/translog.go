package supervisor

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
)

// logTransition writes one line for the transition e, at the level it
// deserves: Failed is an error; an exit nobody asked for, a health
// verdict, a delayed restart or a rejected hand-over a warning; a
// scheduled task's routine comings and goings, and each agent taken
// over after an exec, debug (V(1)); the rest info. The agent's name is
// on the logger already; the line carries from, to, the reason and, for
// an exit, what it was.
//
// logr has no warning level: a warning goes through the logger's slog
// handler, which is the host's own for a logger made by
// logr.FromSlogHandler (so it is slog.LevelWarn there) and an info line
// for any other sink.
func logTransition(log logr.Logger, e Event) {
	if log.GetSink() == nil {
		return
	}
	kv := transitionValues(e)
	switch level := transitionLevel(e); {
	case level == slog.LevelError:
		log.Error(nil, "agent "+e.To.String(), kv...)
	case level == slog.LevelWarn:
		slog.New(logr.ToSlogHandler(log)).Log(context.Background(), slog.LevelWarn, "agent "+e.To.String(), kv...)
	case level < slog.LevelInfo:
		log.V(1).Info("agent "+e.To.String(), kv...)
	default:
		log.Info("agent "+e.To.String(), kv...)
	}
}

func transitionLevel(e Event) slog.Level {
	switch e.Reason {
	case ReasonScheduled, ReasonScheduleDue, ReasonHandedOver: // routine; the host logs its own hand-over
		return slog.LevelDebug
	case ReasonUnhealthy, ReasonOOMKilled, ReasonRestartBudget, ReasonHandoverRejected, ReasonReloadFailed, ReasonTaskTimeout:
		if e.To != Failed {
			return slog.LevelWarn
		}
	}
	if e.To == Failed {
		return slog.LevelError
	}
	if x := e.Exit(); x != nil && !x.Requested && e.To != Completed && e.Reason != ReasonAgentStopped {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func transitionValues(e Event) []any {
	kv := []any{"from", e.From.String(), "to", e.To.String(), "reason", string(e.Reason)}
	st := e.Status
	if x := e.Exit(); x != nil {
		kv = append(kv, "exit", x.Cause(), "ran", x.Ran.Round(time.Millisecond).String())
	}
	switch {
	case e.To.hasChild() && st.PID != 0:
		kv = append(kv, "pid", st.PID)
	case e.To == Backoff:
		kv = append(kv, "restartIn", st.NextRestartAt.Sub(e.Time).Round(time.Millisecond).String(), "streak", st.Streak)
	case e.To == Failed && !st.NextRestartAt.IsZero():
		kv = append(kv, "retryIn", st.NextRestartAt.Sub(e.Time).Round(time.Millisecond).String())
	case e.To == Waiting && st.WaitingFor != "":
		kv = append(kv, "waitingFor", st.WaitingFor)
	case e.To == Waiting && !st.NextRunAt.IsZero():
		kv = append(kv, "nextRun", st.NextRunAt.Format(time.RFC3339))
	}
	if len(e.Exits) > 0 {
		kv = append(kv, "recentExits", len(e.Exits))
	}
	return kv
}

package edgedaemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/tend-dev/tend/health"
	"github.com/tend-dev/tend/logs"
	"github.com/tend-dev/tend/supervisor"
)

// agentView is what the status endpoint shows of one agent.
type agentView struct {
	supervisor.Status
	Health    *health.Report  `json:"health,omitempty"`
	Heartbeat *health.Message `json:"last_heartbeat,omitempty"`
	Log       string          `json:"log"`
	// LastLines are the end of its log, with ?lines=N.
	LastLines []string `json:"last_lines,omitempty"`
}

// eventView is one transition as the API shows it.
type eventView struct {
	Agent  string            `json:"agent"`
	From   supervisor.State  `json:"from"`
	To     supervisor.State  `json:"to"`
	Reason supervisor.Reason `json:"reason"`
	Exit   *supervisor.Exit  `json:"exit,omitempty"`
	PID    int               `json:"pid,omitempty"`
	Time   time.Time         `json:"time"`
}

func eventViews(events []supervisor.Event) []eventView {
	out := make([]eventView, 0, len(events))
	for _, e := range events {
		out = append(out, eventView{Agent: e.Name, From: e.From, To: e.To, Reason: e.Reason, Exit: e.Exit(), PID: e.Status.PID, Time: e.Time})
	}
	return out
}

// count reads the query parameter key as a count in [1, most], or def.
func count(r *http.Request, key string, def, most int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(key))
	if err != nil || n <= 0 || n > most {
		return def
	}
	return n
}

// statusHandler serves the operator's page and JSON API (see guard for
// who may call what):
//
//	GET  /                           the status page
//	GET  /metrics                    Prometheus metrics
//	GET  /agents?lines=N             every agent: state, PID, restarts, health (and its last N log lines)
//	GET  /agents/{name}              one agent
//	GET  /agents/{name}/logs?n=100   the last n lines of its log
//	GET  /agents/{name}/events       its latest transitions
//	GET  /events?n=50                the latest transitions of all agents
//	POST /agents/{name}/start|stop|restart
//	GET  /daemon                     this binary: PID, executable, start
//	POST /upgrade  {"path": ...}     hand the agents to a new binary
func (d *daemon) statusHandler(upgrade, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /upgrade", upgrade)
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /{$}", servePage)
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, eventViews(d.group.History(count(r, "n", 50, 10000))))
	})
	mux.HandleFunc("GET /agents/{name}/events", func(w http.ResponseWriter, r *http.Request) {
		p, ok := d.group.Get(r.PathValue("name"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such agent"})
			return
		}
		writeJSON(w, http.StatusOK, eventViews(p.History()))
	})
	mux.HandleFunc("GET /daemon", func(w http.ResponseWriter, r *http.Request) {
		exe, _ := os.Executable()
		writeJSON(w, http.StatusOK, map[string]any{"pid": os.Getpid(), "executable": exe, "started_at": d.started})
	})
	mux.HandleFunc("GET /agents", func(w http.ResponseWriter, r *http.Request) {
		lines := count(r, "lines", 0, 100)
		out := []agentView{}
		for _, st := range d.group.List() {
			v := d.view(st)
			if lines > 0 && v.Log != "" {
				v.LastLines, _ = logs.Tail(v.Log, lines) // a log not written yet has no lines
			}
			out = append(out, v)
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /agents/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := d.group.Get(r.PathValue("name"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such agent"})
			return
		}
		writeJSON(w, http.StatusOK, d.view(p.Status()))
	})
	mux.HandleFunc("GET /agents/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		v := d.view(supervisor.Status{Name: r.PathValue("name")})
		if v.Log == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such agent"})
			return
		}
		lines, err := logs.Tail(v.Log, count(r, "n", 100, 10000))
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"log": v.Log, "lines": lines})
	})
	mux.HandleFunc("POST /agents/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		ctx, cancel := context.WithTimeout(r.Context(), 40*time.Second)
		defer cancel()
		var err error
		switch r.PathValue("action") {
		case "start":
			err = d.group.Start(ctx, name)
		case "stop":
			err = d.group.Stop(ctx, name)
		case "restart":
			err = d.group.Restart(ctx, name)
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "actions are start, stop and restart"})
			return
		}
		switch {
		case errors.Is(err, supervisor.ErrNotFound):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil && !errors.Is(err, supervisor.ErrAlreadyStarted):
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
		default:
			p, _ := d.group.Get(name)
			writeJSON(w, http.StatusOK, d.view(p.Status()))
		}
	})
	return mux
}

func (d *daemon) view(st supervisor.Status) agentView {
	v := agentView{Status: st}
	d.mu.Lock()
	defer d.mu.Unlock()
	rt := d.agents[st.Name]
	if rt == nil {
		return v
	}
	v.Log = rt.rotator.Path()
	checker, hbSrv := rt.health.get()
	if checker != nil {
		r := checker.Report()
		v.Health = &r
	}
	if hbSrv != nil {
		if m, ok := hbSrv.Last(); ok {
			v.Heartbeat = &m
		}
	}
	return v
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

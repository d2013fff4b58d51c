package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
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
}

// statusHandler serves the operator's JSON API:
//
//	GET  /agents                     every agent: state, PID, restarts, health
//	GET  /agents/{name}              one agent
//	GET  /agents/{name}/logs?n=100   the last n lines of its log
//	POST /agents/{name}/start|stop|restart
//	GET  /daemon                     this binary: PID, executable, start
//	POST /upgrade  {"path": ...}     hand the agents to a new binary
func (d *daemon) statusHandler(upgrade http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /upgrade", upgrade)
	mux.HandleFunc("GET /daemon", func(w http.ResponseWriter, r *http.Request) {
		exe, _ := os.Executable()
		writeJSON(w, http.StatusOK, map[string]any{"pid": os.Getpid(), "executable": exe, "started_at": d.started})
	})
	mux.HandleFunc("GET /agents", func(w http.ResponseWriter, r *http.Request) {
		var out []agentView
		for _, st := range d.group.List() {
			out = append(out, d.view(st))
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
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n <= 0 || n > 10000 {
			n = 100
		}
		lines, err := logs.Tail(v.Log, n)
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

func splitLines(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
}

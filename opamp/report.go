package opamp

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/tend-dev/tend/supervisor"
)

// description is the host as OpAMP's AgentDescription: service name,
// instance id and version identify it; host name, OS and architecture
// and the host's own attributes describe it.
func (b *Bridge) description() *protobufs.AgentDescription {
	version := b.cfg.ServiceVersion
	if version == "" {
		if info, ok := debug.ReadBuildInfo(); ok {
			version = info.Main.Version
		}
	}
	host, _ := os.Hostname()
	id := b.InstanceUID()
	nonIdentifying := []*protobufs.KeyValue{
		keyValue("host.name", host), keyValue("os.type", runtime.GOOS), keyValue("host.arch", runtime.GOARCH),
	}
	for k, v := range b.cfg.Attributes {
		nonIdentifying = append(nonIdentifying, keyValue(k, v))
	}
	return &protobufs.AgentDescription{
		IdentifyingAttributes: []*protobufs.KeyValue{
			keyValue("service.name", b.cfg.ServiceName), keyValue("service.instance.id", id), keyValue("service.version", version),
		},
		NonIdentifyingAttributes: nonIdentifying,
	}
}

func keyValue(k, v string) *protobufs.KeyValue {
	return &protobufs.KeyValue{Key: k, Value: &protobufs.AnyValue{Value: &protobufs.AnyValue_StringValue{StringValue: v}}}
}

// runningOrDone is the default Config.Healthy.
func runningOrDone(st supervisor.Status) bool {
	switch st.State {
	case supervisor.Running, supervisor.Completed:
		return true
	case supervisor.Waiting:
		return st.WaitingFor == "" // a scheduled task between runs, not one held back
	}
	return false
}

// health is the Group as OpAMP's ComponentHealth: one entry per agent,
// healthy when every agent is.
func (b *Bridge) health() *protobufs.ComponentHealth {
	list := b.group.List()
	h := &protobufs.ComponentHealth{Healthy: true, ComponentHealthMap: make(map[string]*protobufs.ComponentHealth, len(list)),
		StatusTimeUnixNano: uint64(time.Now().UnixNano())}
	unhealthy := 0
	for _, st := range list {
		c := agentHealth(st, b.cfg.Healthy(st))
		h.ComponentHealthMap[st.Name] = c
		if !c.Healthy {
			unhealthy++
			h.Healthy = false
			h.LastError = st.Name + ": " + c.LastError
		}
	}
	h.Status = fmt.Sprintf("%d of %d agents healthy", len(list)-unhealthy, len(list))
	return h
}

// agentHealth is one agent's entry: its state (with what it waits for or
// why it last ended), when its child started and when it entered the
// state, and its last exit as the error while it is not healthy.
func agentHealth(st supervisor.Status, healthy bool) *protobufs.ComponentHealth {
	c := &protobufs.ComponentHealth{Healthy: healthy, Status: st.State.String()}
	switch {
	case st.WaitingFor != "":
		c.Status += ": waiting for " + st.WaitingFor
	case st.LastExit != nil && !healthy:
		c.Status += ": " + st.LastExit.String()
		c.LastError = st.LastExit.Cause()
	}
	if !healthy && c.LastError == "" {
		c.LastError = c.Status
	}
	if st.PID != 0 && !st.StartedAt.IsZero() {
		c.StartTimeUnixNano = uint64(st.StartedAt.UnixNano())
	}
	if !st.StateSince.IsZero() {
		c.StatusTimeUnixNano = uint64(st.StateSince.UnixNano())
	}
	return c
}

// report sends the Group's health when agents change, at most once a
// Coalesce: the first change after a quiet spell waits Coalesce for the
// rest of its burst, and what changes meanwhile is in the same report.
func (b *Bridge) report(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.dirty:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(b.cfg.Coalesce):
		}
		select { // what came during the wait is in this report
		case <-b.dirty:
		default:
		}
		if err := b.client.SetHealth(b.health()); err != nil {
			b.log.Error(err, "cannot report health")
		}
	}
}

// Package fleet is a small OpAMP server on opamp-go's server package:
// it keeps what each connected host last reported (description, health
// of each agent, effective configuration, remote configuration status)
// and pushes configurations and commands to them. The fleet example
// serves it, and the bridge's tests run against it.
package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/open-telemetry/opamp-go/server"
	"github.com/open-telemetry/opamp-go/server/types"
	"google.golang.org/protobuf/proto"
)

// Host is what the server knows of one connected host.
type Host struct {
	UID         string
	Description *protobufs.AgentDescription
	Health      *protobufs.ComponentHealth
	Effective   []byte // the effective config's file body
	Remote      *protobufs.RemoteConfigStatus
	Connected   bool
	Messages    int // AgentToServer messages received from it
}

// Server is an OpAMP server for a fleet of hosts.
type Server struct {
	// Token, if set, is the bearer token hosts must send.
	Token string
	// Heartbeat is the interval the server asks hosts to report at (0:
	// the hosts' own).
	Heartbeat time.Duration

	mu       sync.Mutex
	hosts    map[string]*host
	changed  chan struct{} // closed and replaced on every report
	srv      *http.Server
	messages atomic.Int64
}

type host struct {
	Host
	conn    types.Connection
	offered *protobufs.AgentRemoteConfig // the config offered, sent until the host reports it
}

// Start serves OpAMP on ln at /v1/opamp until Stop.
func (s *Server) Start(ln net.Listener) error {
	s.mu.Lock()
	if s.hosts == nil {
		s.hosts, s.changed = map[string]*host{}, make(chan struct{})
	}
	s.mu.Unlock()
	handler, connContext, err := server.New(nil).Attach(server.Settings{Callbacks: types.Callbacks{
		OnConnecting: func(r *http.Request) types.ConnectionResponse {
			if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
				return types.ConnectionResponse{Accept: false, HTTPStatusCode: http.StatusUnauthorized}
			}
			return types.ConnectionResponse{Accept: true, ConnectionCallbacks: types.ConnectionCallbacks{
				OnMessage:         s.onMessage,
				OnConnectionClose: s.onClose,
			}}
		},
	}})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/opamp", handler)
	s.srv = &http.Server{Handler: mux, ConnContext: connContext, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // ended by Stop
	return nil
}

// Stop closes the server and every connection.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	for _, h := range s.hosts {
		if h.conn != nil {
			h.conn.Disconnect() //nolint:errcheck // going anyway
		}
	}
	s.mu.Unlock()
	return s.srv.Shutdown(ctx)
}

// Messages counts the AgentToServer messages received so far.
func (s *Server) Messages() int64 { return s.messages.Load() }

func uid(b []byte) string { return fmt.Sprintf("%x", b) }

func (s *Server) onMessage(ctx context.Context, conn types.Connection, m *protobufs.AgentToServer) *protobufs.ServerToAgent {
	s.messages.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := uid(m.InstanceUid)
	h := s.hosts[id]
	if h == nil {
		h = &host{Host: Host{UID: id}}
		s.hosts[id] = h
	}
	first := h.conn != conn // a new connection: offer the heartbeat interval
	h.conn, h.Connected = conn, true
	h.Messages++
	if m.AgentDescription != nil {
		h.Description = m.AgentDescription
	}
	if m.Health != nil {
		h.Health = m.Health
	}
	if m.EffectiveConfig != nil {
		h.Effective = nil
		for _, f := range m.EffectiveConfig.GetConfigMap().GetConfigMap() {
			h.Effective = f.Body
		}
	}
	if m.RemoteConfigStatus != nil {
		h.Remote = m.RemoteConfigStatus
	}
	close(s.changed)
	s.changed = make(chan struct{})
	reply := &protobufs.ServerToAgent{InstanceUid: m.InstanceUid}
	if h.Description == nil || h.Health == nil {
		// A host this server does not know yet (it restarted, or the host
		// connected elsewhere before) sends only what changed: ask for all.
		reply.Flags = uint64(protobufs.ServerToAgentFlags_ServerToAgentFlags_ReportFullState)
	}
	if first && s.Heartbeat > 0 {
		reply.ConnectionSettings = &protobufs.ConnectionSettingsOffers{
			Opamp: &protobufs.OpAMPConnectionSettings{HeartbeatIntervalSeconds: uint64(s.Heartbeat / time.Second)}}
	}
	if h.offered != nil && !bytes.Equal(h.Remote.GetLastRemoteConfigHash(), h.offered.ConfigHash) {
		reply.RemoteConfig = h.offered // until the host says it has it: an HTTP host gets it at its next poll
	}
	return reply
}

func (s *Server) onClose(conn types.Connection) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.hosts {
		if h.conn == conn {
			h.conn, h.Connected = nil, false
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Hosts lists every host that ever connected, by UID.
func (s *Server) Hosts() []Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Host, 0, len(s.hosts))
	for _, h := range s.hosts {
		out = append(out, h.Host)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

// Wait returns once ok accepts the hosts, or with an error naming what
// the last hosts were when ctx ends.
func (s *Server) Wait(ctx context.Context, what string, ok func([]Host) bool) ([]Host, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		hosts := s.Hosts()
		if ok(hosts) {
			return hosts, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return hosts, fmt.Errorf("the server never saw %s: %w", what, ctx.Err())
		}
	}
}

// errNoHost: the UID names no connected host.
var errNoHost = errors.New("no such connected host")

// Offer makes a configuration of one file (body) the host's, sent with
// every reply until the host reports it (an HTTP host gets it at its next
// poll), and returns its hash.
func (s *Server) Offer(hostUID string, body []byte) ([]byte, error) {
	sum := sha256.Sum256(body)
	rc := &protobufs.AgentRemoteConfig{ConfigHash: sum[:],
		Config: &protobufs.AgentConfigMap{ConfigMap: map[string]*protobufs.AgentConfigFile{"": {Body: body, ContentType: "text/yaml"}}}}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[hostUID]
	if h == nil {
		return nil, fmt.Errorf("host %s: %w", hostUID, errNoHost)
	}
	h.offered = rc
	return sum[:], nil
}

// Push offers the host a configuration (see Offer) and sends it at once
// over the host's WebSocket.
func (s *Server) Push(ctx context.Context, hostUID string, body []byte) ([]byte, error) {
	hash, err := s.Offer(hostUID, body)
	if err != nil {
		return nil, err
	}
	conn, id, err := s.connOf(hostUID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	rc := s.hosts[hostUID].offered
	s.mu.Unlock()
	return hash, conn.Send(ctx, &protobufs.ServerToAgent{InstanceUid: id, RemoteConfig: rc})
}

// Restart sends the host OpAMP's restart command.
func (s *Server) Restart(ctx context.Context, hostUID string) error {
	conn, id, err := s.connOf(hostUID)
	if err != nil {
		return err
	}
	return conn.Send(ctx, &protobufs.ServerToAgent{InstanceUid: id,
		Command: &protobufs.ServerToAgentCommand{Type: protobufs.CommandType_CommandType_Restart}})
}

// Send sends the host a custom message.
func (s *Server) Send(ctx context.Context, hostUID string, m *protobufs.CustomMessage) error {
	conn, id, err := s.connOf(hostUID)
	if err != nil {
		return err
	}
	return conn.Send(ctx, &protobufs.ServerToAgent{InstanceUid: id, CustomMessage: proto.Clone(m).(*protobufs.CustomMessage)})
}

func (s *Server) connOf(hostUID string) (types.Connection, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hosts[hostUID]
	if h == nil || h.conn == nil {
		return nil, nil, fmt.Errorf("host %s: %w", hostUID, errNoHost)
	}
	var id []byte
	fmt.Sscanf(hostUID, "%x", &id)
	return h.conn, id, nil
}

// AgentsHealthy reports whether the host has reported each named agent
// healthy.
func (h Host) AgentsHealthy(names ...string) bool {
	for _, n := range names {
		if !h.Health.GetComponentHealthMap()[n].GetHealthy() {
			return false
		}
	}
	return true
}

// Settled reports whether the host has reported the configuration of
// hash APPLIED or FAILED.
func (h Host) Settled(hash []byte) bool {
	s := h.Remote.GetStatus()
	return bytes.Equal(h.Remote.GetLastRemoteConfigHash(), hash) &&
		(s == protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED || s == protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED)
}

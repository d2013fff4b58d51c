package opamp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/open-telemetry/opamp-go/protobufs"
	"github.com/tend-dev/tend/reload"
)

// errSuperseded ends an apply that a newer remote configuration replaced.
var errSuperseded = errors.New("superseded by a newer remote configuration")

// onMessage takes what the server sent: a remote configuration replaces
// any not yet taken and cancels the one being applied, which then rolls
// back before the new one is applied; nothing queues beyond one.
func (b *Bridge) onMessage(ctx context.Context, m *types.MessageData) {
	if m.CustomMessage != nil {
		b.onCustomMessage(ctx, m.CustomMessage)
	}
	rc := m.RemoteConfig
	if rc == nil || b.cfg.ConfigPath == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bytes.Equal(rc.ConfigHash, b.handled) || b.pending != nil && bytes.Equal(rc.ConfigHash, b.pending.ConfigHash) {
		return // the server sends the config it offers again on reconnects
	}
	b.pending = rc
	if b.cancel != nil {
		b.cancel()
	}
	select {
	case b.offers <- struct{}{}:
	default:
	}
}

// applyRemote applies remote configurations one at a time, the latest
// first, until ctx ends.
func (b *Bridge) applyRemote(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.offers:
		}
		b.mu.Lock()
		rc := b.pending
		b.pending = nil
		if rc == nil { // taken with an earlier signal
			b.mu.Unlock()
			continue
		}
		actx, cancel := context.WithCancelCause(ctx)
		b.cancel = func() { cancel(errSuperseded) }
		b.handled = rc.ConfigHash
		b.mu.Unlock()
		b.apply(actx, rc)
		cancel(nil)
		b.mu.Lock()
		b.cancel = nil
		b.mu.Unlock()
	}
}

// apply runs one remote configuration as a reload.Transaction: validate
// it as a local file is, write it atomically to ConfigPath, have the host
// apply it, verify that the agents it changed come up and stay up, and
// roll back to the last good content otherwise; then report APPLIED or
// FAILED with the reason, and the effective configuration.
func (b *Bridge) apply(ctx context.Context, rc *protobufs.AgentRemoteConfig) {
	status := &protobufs.RemoteConfigStatus{LastRemoteConfigHash: rc.ConfigHash, Status: protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLYING}
	b.setStatus(status)
	data, err := b.pick(rc.Config)
	if err == nil {
		var changed []string
		tx := reload.Transaction{
			Path:     b.cfg.ConfigPath,
			Validate: b.cfg.Validate,
			Apply: func(ctx context.Context) error {
				current, err := os.ReadFile(b.cfg.ConfigPath)
				if err != nil {
					return err
				}
				res, err := b.cfg.Apply(ctx, current)
				changed = slices.Concat(res.Added, res.Restarted, res.Updated)
				sort.Strings(changed)
				return err
			},
			Verify: func(ctx context.Context) error { return b.verify(ctx, changed) },
		}
		var out reload.Outcome
		out, err = tx.Run(ctx, data)
		if out.RolledBack {
			b.log.Info("remote configuration rolled back", "stage", out.Stage, "error", err.Error())
		}
	}
	if cause := context.Cause(ctx); errors.Is(cause, errSuperseded) {
		b.log.Info("remote configuration superseded; rolled back before the next", "hash", fmt.Sprintf("%x", rc.ConfigHash))
		return // the next one reports
	}
	if err != nil {
		status.Status, status.ErrorMessage = protobufs.RemoteConfigStatuses_RemoteConfigStatuses_FAILED, err.Error()
	} else {
		status.Status = protobufs.RemoteConfigStatuses_RemoteConfigStatuses_APPLIED
		b.log.Info("remote configuration applied", "hash", fmt.Sprintf("%x", rc.ConfigHash))
	}
	// The agents and the file as they are now, before the verdict, so
	// that a server reading the verdict sees the state it left.
	if err := b.client.SetHealth(b.health()); err != nil {
		b.log.Error(err, "cannot report health")
	}
	if err := b.client.UpdateEffectiveConfig(ctx); err != nil {
		b.log.Error(err, "cannot report the effective configuration")
	}
	b.setStatus(status)
}

func (b *Bridge) setStatus(s *protobufs.RemoteConfigStatus) {
	if err := b.client.SetRemoteConfigStatus(s); err != nil {
		b.log.Error(err, "cannot report the remote configuration's status")
	}
}

// pick is the config file of the server's map that the host reads.
func (b *Bridge) pick(m *protobufs.AgentConfigMap) ([]byte, error) {
	files := m.GetConfigMap()
	if f, ok := files[b.cfg.ConfigName]; ok {
		return f.GetBody(), nil
	}
	if b.cfg.ConfigName == "" && len(files) == 1 {
		for _, f := range files {
			return f.GetBody(), nil
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, fmt.Sprintf("%q", name))
	}
	sort.Strings(names)
	return nil, fmt.Errorf("the remote configuration has no file %q (it has %v)", b.cfg.ConfigName, names)
}

// verify waits until the changed agents are ready, within VerifyWindow,
// then checks that each stayed up, the same run, for Settle, and asks the
// host's Verify last.
func (b *Bridge) verify(ctx context.Context, changed []string) error {
	if len(changed) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, b.cfg.VerifyWindow)
	defer cancel()
	if err := b.group.WaitReady(wctx, changed...); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return cause
		}
		return err
	}
	runs := map[string]uint64{}
	for _, name := range changed {
		if p, ok := b.group.Get(name); ok {
			runs[name] = p.Status().Run
		}
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(b.cfg.Settle):
	}
	var errs []error
	for _, name := range changed {
		p, ok := b.group.Get(name)
		if !ok {
			continue
		}
		switch st := p.Status(); {
		case st.Run != runs[name] && st.LastExit != nil:
			errs = append(errs, fmt.Errorf("agent %q ended within %v of becoming ready: %s", name, b.cfg.Settle, st.LastExit.Cause()))
		case st.Run != runs[name] || !b.cfg.Healthy(st):
			errs = append(errs, fmt.Errorf("agent %q is %s %v after becoming ready", name, st.State, b.cfg.Settle))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if b.cfg.Verify != nil {
		return b.cfg.Verify(ctx, changed)
	}
	return nil
}

// effective is the content of the config file as the host applied it.
func (b *Bridge) effective() (*protobufs.EffectiveConfig, error) {
	if b.cfg.ConfigPath == "" {
		return nil, nil
	}
	data, err := os.ReadFile(b.cfg.ConfigPath)
	if errors.Is(err, os.ErrNotExist) {
		return &protobufs.EffectiveConfig{ConfigMap: &protobufs.AgentConfigMap{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return &protobufs.EffectiveConfig{ConfigMap: &protobufs.AgentConfigMap{ConfigMap: map[string]*protobufs.AgentConfigFile{
		b.cfg.ConfigName: {Body: data, ContentType: "text/yaml"},
	}}}, nil
}

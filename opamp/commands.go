package opamp

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/open-telemetry/opamp-go/protobufs"
)

// RestartCapability is the custom capability by which a server restarts
// one agent: a CustomMessage of this capability, Type "restart", whose
// Data is the agent's name. OpAMP's own restart command has no target,
// so it restarts every agent.
const RestartCapability = "com.github.tend-dev.tend.restart"

// restartTimeout bounds a commanded restart.
const restartTimeout = time.Minute

// onCommand restarts every agent of the Group, in parallel, on the
// server's restart command.
func (b *Bridge) onCommand(ctx context.Context, c *protobufs.ServerToAgentCommand) error {
	if c.GetType() != protobufs.CommandType_CommandType_Restart {
		return nil
	}
	b.log.Info("restarting every agent on the server's command")
	b.tasks.Go(func() { // the client's receive loop must not wait for the agents
		rctx, cancel := context.WithTimeout(ctx, restartTimeout)
		defer cancel()
		var wg sync.WaitGroup
		list := b.group.List()
		errs := make([]error, len(list))
		for i, st := range list {
			wg.Go(func() { errs[i] = b.group.Restart(rctx, st.Name) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.log.Error(err, "restart on the server's command")
		}
	})
	return nil
}

// onCustomMessage restarts the agent a RestartCapability message names.
func (b *Bridge) onCustomMessage(ctx context.Context, m *protobufs.CustomMessage) {
	if m.GetCapability() != RestartCapability || m.GetType() != "restart" {
		return
	}
	name := string(m.GetData())
	b.log.Info("restarting an agent on the server's request", "agent", name)
	b.tasks.Go(func() {
		rctx, cancel := context.WithTimeout(ctx, restartTimeout)
		defer cancel()
		if err := b.group.Restart(rctx, name); err != nil {
			b.log.Error(err, "restart on the server's request", "agent", name)
		}
	})
}

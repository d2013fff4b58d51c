package supervisor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Attachment is a resource a host keeps for one agent of a Group (a health
// Checker, a heartbeat server, a watched file), so that it lives with the
// agent's membership: it is opened when the agent is added (or when the
// attachment first appears in its Spec), closed and opened again when its
// Config changes in an Apply or Launch, and closed when the agent is
// removed or the Group is closed. An agent's attachments are told apart by
// Name. A lone Process does not use them.
type Attachment struct {
	// Name is unique among the agent's attachments.
	Name string
	// Config is what the attachment is built from; Apply and Launch
	// compare it (reflect.DeepEqual) with the Config it was opened with,
	// and rebuild it when they differ. Settings the Spec does not hold
	// (health checks, a heartbeat socket) belong here.
	Config any
	// Open builds the attachment for the agent's Process. ctx ends when
	// it is to close, and whatever Open started must end with it; the
	// returned func, if not nil, runs after that and returns once all is
	// released. An error is reported by Apply or Launch, joined with the
	// others; the agent itself is not affected.
	Open func(ctx context.Context, p *Process) (closeFn func(), err error)
}

// openAttachment is an Attachment that is open for a member.
type openAttachment struct {
	config  any
	cancel  context.CancelFunc
	closeFn func()
}

func (o *openAttachment) close() {
	o.cancel()
	if o.closeFn != nil {
		o.closeFn()
	}
}

// attachments are a member's open attachments, by name.
type attachments struct {
	mu   sync.Mutex
	open map[string]*openAttachment
}

// checkAttachments rejects a Spec whose attachments cannot be told apart
// or opened.
func checkAttachments(list []Attachment) error {
	seen := map[string]bool{}
	for i, a := range list {
		switch {
		case a.Name == "" || seen[a.Name]:
			return fmt.Errorf("attachments[%d]: name %q is empty or used twice", i, a.Name)
		case a.Open == nil:
			return fmt.Errorf("attachments[%d] %q: no Open", i, a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

// sync makes the open attachments match want for p: it closes those no
// longer wanted or whose Config changed, opens the new ones, and reports
// whether anything changed and what failed to open.
func (as *attachments) sync(p *Process, want []Attachment) (changed bool, err error) {
	as.mu.Lock()
	defer as.mu.Unlock()
	keep := map[string]bool{}
	var errs []error
	for _, a := range want {
		keep[a.Name] = true
		if o := as.open[a.Name]; o != nil {
			if reflect.DeepEqual(o.config, a.Config) {
				continue
			}
			o.close()
			delete(as.open, a.Name)
		}
		changed = true
		ctx, cancel := context.WithCancel(context.Background())
		closeFn, err := a.Open(ctx, p)
		if err != nil {
			cancel()
			errs = append(errs, fmt.Errorf("agent %q: attachment %q: %w", p.Name(), a.Name, err))
			continue
		}
		if as.open == nil {
			as.open = map[string]*openAttachment{}
		}
		as.open[a.Name] = &openAttachment{config: a.Config, cancel: cancel, closeFn: closeFn}
	}
	for name, o := range as.open {
		if !keep[name] {
			o.close()
			delete(as.open, name)
			changed = true
		}
	}
	return changed, errors.Join(errs...)
}

// closeAll closes every open attachment.
func (as *attachments) closeAll() {
	as.sync(nil, nil) //nolint:errcheck // closing opens nothing
}

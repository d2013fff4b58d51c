package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// journal records what attachments do, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
	j.mu.Unlock()
}

func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.lines
	j.lines = nil
	return out
}

// attachment returns an Attachment named name built from config that
// records its opening, and its closing once its ctx has ended.
func (j *journal) attachment(name string, config any) Attachment {
	return Attachment{Name: name, Config: config, Open: func(ctx context.Context, p *Process) (func(), error) {
		j.add("open %s %s %v", p.Name(), name, config)
		return func() {
			<-ctx.Done() // the attachment's goroutines see it end first
			j.add("close %s %s %v", p.Name(), name, config)
		}, nil
	}}
}

// Attachments live with their member: opened when it is added, kept while
// their Config is the same, rebuilt when it changes, closed when they are
// dropped from the Spec, when the agent is removed and when the Group is
// closed.
func TestAttachmentsFollowTheirMember(t *testing.T) {
	g, err := NewGroup(testGroupOptions(GroupOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	var j journal
	spec := agentSpec(t)
	spec.Name = "a"
	other := agentSpec(t)
	other.Name = "b"
	other.Attach = []Attachment{j.attachment("checker", 1)}
	step := func(what string, specs []Spec, want ...string) ApplyResult {
		t.Helper()
		res, err := g.Apply(ctxTimeout(t, 10*time.Second), specs)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := j.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
		return res
	}
	spec.Attach = []Attachment{j.attachment("checker", 1), j.attachment("watch", "/etc/a.conf")}
	step("add", []Spec{spec, other}, "open a checker 1", "open a watch /etc/a.conf", "open b checker 1")
	if res := step("same", []Spec{spec, other}); !slices.Equal(res.Unchanged, []string{"a", "b"}) {
		t.Fatalf("nothing changed, yet %+v", res)
	}
	spec.Attach[0] = j.attachment("checker", 2)
	res := step("changed config", []Spec{spec, other}, "close a checker 1", "open a checker 2")
	if !slices.Equal(res.Updated, []string{"a"}) || !slices.Equal(res.Unchanged, []string{"b"}) {
		t.Fatalf("an attachment's change: %+v, want a Updated", res)
	}
	p, _ := g.Get("a")
	pid := p.Status().PID
	spec.Attach = spec.Attach[:1]
	step("dropped", []Spec{spec, other}, "close a watch /etc/a.conf")
	if p.Status().PID != pid {
		t.Fatal("an attachment's change restarted the agent")
	}
	step("removed", []Spec{spec}, "close b checker 1")
	if err := g.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := j.take(); !slices.Equal(got, []string{"close a checker 2"}) {
		t.Fatalf("Close: %q", got)
	}
	if err := p.Start(ctxTimeout(t, time.Second)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start after Close: %v", err)
	}
}

// Two attachments of one name reject the set; an Open that fails is
// reported and leaves the agent running.
func TestAttachmentErrors(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	var j journal
	spec := agentSpec(t)
	spec.Attach = []Attachment{j.attachment("x", 1), j.attachment("x", 2)}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec}); !errors.Is(err, ErrRejected) {
		t.Fatalf("duplicate names: %v", err)
	}
	spec.Attach = []Attachment{{Name: "broken", Open: func(context.Context, *Process) (func(), error) {
		return nil, errors.New("socket in use")
	}}}
	_, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{spec})
	if err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `attachment "broken": socket in use`) {
		t.Fatalf("failing Open: %v", err)
	}
	if p, _ := g.Get(spec.Name); p.Status().State != Running {
		t.Fatalf("a failing attachment stopped the agent: %+v", p.Status())
	}
}

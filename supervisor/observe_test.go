package supervisor

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/backoff"
	"github.com/tend-dev/tend/config"
)

// Restarts are counted by cause: a crash and a health verdict are
// automatic restarts (Status.Restarts), a Restart call and a restart with
// a dependency are counted beside them, and the counts cross a
// host restart through the Store.
func TestRestartsCountedByCause(t *testing.T) {
	store := tempFile(t, "state.json")
	fs, err := NewFileStore(store)
	if err != nil {
		t.Fatal(err)
	}
	g := newGroup(t, GroupOptions{Store: fs})
	db := groupSpec(t, "db")
	app := groupSpec(t, "app")
	app.DependsOn = map[string]Dependency{"db": {Condition: ConditionStarted, Propagate: PropagateRestart}}
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{db, app}); err != nil {
		t.Fatal(err)
	}
	p, _ := g.Get("app")
	nextRun := func(after uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if st := p.Status(); st.State == Running && st.Run > after {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("app not Running again after run %d: %+v", after, p.Status())
			}
		}
	}
	run := p.Status().Run
	syscall.Kill(p.Status().PID, syscall.SIGKILL)
	nextRun(run)
	run = p.Status().Run
	if err := p.Unhealthy(ctxTimeout(t, 5*time.Second), run, "probe failed"); err != nil {
		t.Fatal(err)
	}
	nextRun(run)
	run = p.Status().Run
	if err := g.Restart(ctxTimeout(t, 10*time.Second), "app"); err != nil {
		t.Fatal(err)
	}
	nextRun(run)
	run = p.Status().Run
	if err := g.Restart(ctxTimeout(t, 10*time.Second), "db"); err != nil {
		t.Fatal(err)
	}
	nextRun(run)

	want := RestartCounts{Crash: 1, Unhealthy: 1, Requested: 1, Dependency: 1}
	if st := p.Status(); st.RestartsBy != want || st.Restarts != 2 {
		t.Fatalf("app Restarts %d, RestartsBy %+v; want 2 and %+v", st.Restarts, st.RestartsBy, want)
	}
	if d, _ := g.Get("db"); d.Status().RestartsBy != (RestartCounts{Requested: 1}) {
		t.Fatalf("db RestartsBy %+v, want one requested", d.Status().RestartsBy)
	}
	var causes []string
	for cause, n := range p.Status().RestartsBy.All() {
		causes = append(causes, cause)
		if n != *causeCounter(t, p.Status().RestartsBy, cause) {
			t.Errorf("All yields %s=%d, the field says otherwise", cause, n)
		}
	}
	if !slices.Equal(causes, []string{"crash", "unhealthy", "oom", "requested", "dependency"}) {
		t.Fatalf("All yields causes %v", causes)
	}

	// The counts outlive the host, as Restarts does.
	if err := g.Close(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	fs2, err := NewFileStore(store)
	if err != nil {
		t.Fatal(err)
	}
	g2 := newGroup(t, GroupOptions{Store: fs2})
	if _, err := g2.Add(groupSpec(t, "app")); err != nil {
		t.Fatal(err)
	}
	if p2, _ := g2.Get("app"); p2.Status().RestartsBy != want {
		t.Fatalf("after a host restart RestartsBy %+v, want %+v", p2.Status().RestartsBy, want)
	}
}

func causeCounter(t *testing.T, c RestartCounts, cause string) *int {
	t.Helper()
	for _, x := range causes {
		if string(x.cause) == cause {
			return x.counter(&c)
		}
	}
	t.Fatalf("no counter for %q", cause)
	return nil
}

// The history keeps the latest HistoryLen events in order, and a Group's
// merges its members' by time; the time in Backoff adds up.
func TestHistoryKeepsTheLatestEvents(t *testing.T) {
	g := newGroup(t, GroupOptions{})
	flap := groupSpec(t, "flap", "-after", "5ms", "-exit", "1")
	flap.StartSeconds = config.Duration(time.Millisecond)
	flap.Restart = RestartSpec{MaxRestarts: -1, Backoff: backoff.Constant(2 * time.Millisecond), FirstDelay: config.Duration(2 * time.Millisecond)}
	calm := groupSpec(t, "calm")
	if _, err := g.Apply(ctxTimeout(t, 10*time.Second), []Spec{calm}); err != nil {
		t.Fatal(err)
	}
	p, err := g.Add(flap)
	if err != nil {
		t.Fatal(err)
	}
	p.Start(ctxTimeout(t, 10*time.Second)) //nolint:errcheck // it exits at once, over and over
	for deadline := time.Now().Add(20 * time.Second); p.Status().Restarts < HistoryLen; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d restarts", p.Status().Restarts)
		}
	}
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	h := p.History()
	if len(h) != HistoryLen {
		t.Fatalf("history holds %d events, want %d", len(h), HistoryLen)
	}
	for i := 1; i < len(h); i++ {
		if h[i].From != h[i-1].To || h[i].Time.Before(h[i-1].Time) {
			t.Fatalf("history out of order at %d: %v after %v", i, h[i], h[i-1])
		}
	}
	if last := h[len(h)-1]; last.To != Stopped || last.Reason != ReasonStopped && last.Reason != ReasonStopRequested {
		t.Fatalf("last event %v, want the stop", last)
	}
	if h[0].Reason == ReasonStartRequested {
		t.Fatalf("the first event %v is still there after %d restarts", h[0], p.Status().Restarts)
	}
	st := p.Status()
	if backoffs := st.Restarts; st.InBackoff < time.Duration(backoffs-1)*2*time.Millisecond {
		t.Fatalf("InBackoff %v after %d restarts 2ms apart", st.InBackoff, backoffs)
	}

	all := g.History(0)
	if len(all) != HistoryLen+len(g.mustGet(t, "calm").History()) {
		t.Fatalf("Group.History holds %d events", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.Before(all[i-1].Time) {
			t.Fatalf("Group.History out of order at %d", i)
		}
	}
	if last3 := g.History(3); len(last3) != 3 || last3[2].Time != all[len(all)-1].Time {
		t.Fatalf("History(3) = %v", last3)
	}
}

func (g *Group) mustGet(t *testing.T, name string) *Process {
	t.Helper()
	p, ok := g.Get(name)
	if !ok {
		t.Fatalf("no agent %q", name)
	}
	return p
}

// records is a slog.Handler that keeps every record.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec.Clone())
	return nil
}
func (r *records) WithAttrs(attrs []slog.Attr) slog.Handler { return &withAttrs{r, attrs} }
func (r *records) WithGroup(string) slog.Handler            { return r }

type withAttrs struct {
	*records
	attrs []slog.Attr
}

func (w *withAttrs) Handle(ctx context.Context, rec slog.Record) error {
	rec.AddAttrs(w.attrs...)
	return w.records.Handle(ctx, rec)
}
func (w *withAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &withAttrs{w.records, append(slices.Clone(w.attrs), attrs...)}
}

// attr is the value of key in rec, "" if absent.
func attr(rec slog.Record, key string) string {
	var v string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
		}
		return true
	})
	return v
}

// Each transition is logged once through the host's slog handler, with
// the agent, the reason and the exit, at its level: a crash is a warning,
// a requested stop info, giving up an error.
func TestTransitionsLoggedOnceAtTheirLevel(t *testing.T) {
	rec := &records{}
	g := newGroup(t, GroupOptions{Logger: logr.FromSlogHandler(rec)})
	spec := groupSpec(t, "crashy", "-after", "300ms", "-exit", "3")
	spec.Logger = logr.Logger{} // the Group's, as a host's member would
	spec.Restart = RestartSpec{MaxRestarts: 1, Backoff: backoff.None()}
	p, err := g.Add(spec)
	if err != nil {
		t.Fatal(err)
	}
	r := record(t, p)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	r.waitState(t, 10*time.Second, Failed)
	if err := p.Start(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, 10*time.Second, "the stop", func(e Event) bool { return e.To == Stopped && e.From == Stopping })
	events := r.snapshot()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var lines []slog.Record
	for _, r := range rec.list {
		if attr(r, "agent") == "crashy" && attr(r, "to") != "" {
			lines = append(lines, r)
		}
	}
	if len(lines) != len(events) {
		t.Fatalf("%d transition lines for %d events", len(lines), len(events))
	}
	for i, e := range events {
		r := lines[i]
		want := slog.LevelInfo
		switch {
		case e.To == Failed:
			want = slog.LevelError
		case e.From == Running && e.To != Stopping:
			want = slog.LevelWarn // the crash
		}
		if r.Level != want || attr(r, "from") != e.From.String() || attr(r, "to") != e.To.String() || attr(r, "reason") != string(e.Reason) {
			t.Errorf("event %v logged as %s %q from=%s to=%s reason=%s; want level %s", e, r.Level, r.Message, attr(r, "from"), attr(r, "to"), attr(r, "reason"), want)
		}
		if x := e.Exit(); x != nil && attr(r, "exit") != x.Cause() {
			t.Errorf("event %v logged exit %q, want %q", e, attr(r, "exit"), x.Cause())
		}
	}
	if n := len(rec.list) - len(lines); n > 2 {
		for _, r := range rec.list {
			t.Logf("%s %s", r.Level, r.Message)
		}
		t.Fatalf("%d lines beside the transitions", n)
	}
}

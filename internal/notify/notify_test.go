package notify

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOrderAndDropOldest(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []int
	var missedTotal int
	done := make(chan struct{})
	var l List[int]
	cancel := l.Add(func(e, missed int) {
		<-release
		mu.Lock()
		got = append(got, e)
		missedTotal += missed
		mu.Unlock()
		if e == 2999 {
			close(done)
		}
	}, func(int) string { return "" }, logr.Discard())
	defer cancel()
	for i := range 3000 {
		l.Publish(i)
	}
	close(release)
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order: %d after %d", got[i], got[i-1])
		}
	}
	if len(got)+missedTotal != 3000 || missedTotal == 0 {
		t.Fatalf("delivered %d, missed %d: want 3000 in all with drops", len(got), missedTotal)
	}
	if l.Dropped() != int64(missedTotal) {
		t.Fatalf("List.Dropped %d, want the %d the subscriber missed", l.Dropped(), missedTotal)
	}
}

func TestPanicInHookIsContained(t *testing.T) {
	var l List[string]
	got := make(chan string, 2)
	cancel := l.Add(func(e string, _ int) {
		if e == "boom" {
			panic("hook bug")
		}
		got <- e
	}, func(e string) string { return e }, logr.Discard())
	defer cancel()
	l.Publish("boom")
	l.Publish("after")
	select {
	case e := <-got:
		if e != "after" {
			t.Fatalf("got %q", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("delivery stopped after a panicking hook")
	}
}

func TestCancelStopsDelivery(t *testing.T) {
	var l List[int]
	calls := make(chan int, 10)
	cancel := l.Add(func(e, _ int) { calls <- e }, func(int) string { return "" }, logr.Discard())
	l.Publish(1)
	<-calls
	cancel()
	l.Publish(2)
	time.Sleep(50 * time.Millisecond)
	if len(calls) != 0 {
		t.Fatalf("delivered %d after cancel", <-calls)
	}
}

// Drain returns only once every event published before it was handed to
// the hook and the hook returned; a hook that does not return holds it
// until its context ends.
func TestDrainWaitsForDelivery(t *testing.T) {
	var l List[int]
	var delivered atomic.Int32
	release := make(chan struct{})
	defer l.Add(func(e, _ int) {
		if e == 0 {
			<-release
		}
		delivered.Add(1)
	}, func(int) string { return "" }, logr.Discard())()
	if err := l.Drain(context.Background()); err != nil {
		t.Fatalf("Drain with nothing queued: %v", err)
	}
	for i := range 10 {
		l.Publish(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Drain(ctx); err == nil {
		t.Fatalf("Drain returned with the hook blocked and %d delivered", delivered.Load())
	}
	close(release)
	if err := l.Drain(context.Background()); err != nil || delivered.Load() != 10 {
		t.Fatalf("Drain: %v with %d of 10 delivered", err, delivered.Load())
	}
}

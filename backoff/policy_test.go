package backoff

import (
	"testing"
	"time"
)

func TestConstantAndNone(t *testing.T) {
	for _, n := range []int{-1, 1, 2, 1000} {
		if got := Constant(3 * time.Second).Delay(n); got != 3*time.Second {
			t.Errorf("Constant(3s).Delay(%d) = %v", n, got)
		}
		if got := None().Delay(n); got != 0 {
			t.Errorf("None().Delay(%d) = %v", n, got)
		}
		if got := Constant(-time.Second).Delay(n); got != 0 {
			t.Errorf("Constant(-1s).Delay(%d) = %v, want 0", n, got)
		}
	}
	assertFieldError(t, Constant(-time.Second).Validate(), "Constant")
	assertFieldError(t, Constant(0).Validate(), "")
}

func TestFunc(t *testing.T) {
	var seen []int
	f := Func(func(n int) time.Duration {
		seen = append(seen, n)
		return time.Duration(n-3) * time.Second
	})
	got := []time.Duration{f.Delay(0), f.Delay(1), f.Delay(5)}
	want := []time.Duration{0, 0, 2 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if seen[0] != 1 {
		t.Errorf("Func received n=%d for Delay(0), want it raised to 1", seen[0])
	}
}

// Every policy satisfies Policy.
var _ = []Policy{Exponential{}, Steps{}, Constant(0), Func(nil)}

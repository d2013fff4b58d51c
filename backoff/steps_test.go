package backoff

import (
	"math"
	"testing"
	"time"
)

func TestStepsDelay(t *testing.T) {
	s := Steps{Min: time.Second, Max: 16 * time.Second, Steps: 4}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 16 * time.Second}
	for i, w := range want {
		if got := s.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := s.Delay(math.MaxInt); got != 16*time.Second {
		t.Errorf("Delay(MaxInt) = %v, want Max", got)
	}
	if got := s.Delay(-5); got != time.Second {
		t.Errorf("Delay(-5) = %v, want Min", got)
	}
}

// systemd's example: RestartSec=100ms, RestartMaxDelaySec=10s, RestartSteps=2
// gives 100ms, 1s, 10s.
func TestStepsSystemdExample(t *testing.T) {
	s := Steps{Min: 100 * time.Millisecond, Max: 10 * time.Second, Steps: 2}
	want := []time.Duration{100 * time.Millisecond, time.Second, 10 * time.Second}
	for i, w := range want {
		got := s.Delay(i + 1)
		if diff := got - w; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestStepsMonotoneWithinBounds(t *testing.T) {
	s := Steps{Min: 3 * time.Millisecond, Max: 7 * time.Minute, Steps: 37}
	prev := time.Duration(0)
	for n := 1; n <= 100; n++ {
		d := s.Delay(n)
		if d < prev || d < s.Min || d > s.Max {
			t.Fatalf("Delay(%d) = %v: previous %v, bounds [%v, %v]", n, d, prev, s.Min, s.Max)
		}
		prev = d
	}
}

func TestStepsInvalidIsSafe(t *testing.T) {
	for _, s := range []Steps{
		{Min: 0, Max: time.Second, Steps: 3},
		{Min: time.Second, Max: -time.Second, Steps: 3},
		{Min: time.Second, Max: time.Minute, Steps: 0},
		{Min: -time.Second, Max: -time.Minute, Steps: -1},
	} {
		for _, n := range []int{1, 2, 10} {
			if d := s.Delay(n); d < 0 || d > max(s.Max, 0) {
				t.Errorf("%+v: Delay(%d) = %v outside [0, Max]", s, n, d)
			}
		}
	}
}

func TestStepsValidate(t *testing.T) {
	tests := []struct {
		s         Steps
		wantField string
	}{
		{Steps{Min: time.Second, Max: time.Minute, Steps: 5}, ""},
		{Steps{Min: time.Second, Max: time.Second, Steps: 1}, ""},
		{Steps{Min: 0, Max: time.Minute, Steps: 5}, "Min"},
		{Steps{Min: -time.Second, Max: time.Minute, Steps: 5}, "Min"},
		{Steps{Min: time.Minute, Max: time.Second, Steps: 5}, "Max"},
		{Steps{Min: time.Second, Max: time.Minute, Steps: 0}, "Steps"},
	}
	for _, tt := range tests {
		assertFieldError(t, tt.s.Validate(), tt.wantField)
	}
}

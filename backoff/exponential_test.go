package backoff

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/tend-dev/tend/config"
)

func TestExponentialCeiling(t *testing.T) {
	tests := []struct {
		name string
		e    Exponential
		want []time.Duration // Ceiling(1), Ceiling(2), ...
	}{
		{"zero value is 1s doubling to 60s", Exponential{},
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second}},
		{"daemon config base 10s max 60s", Exponential{Initial: 10 * time.Second, Max: 60 * time.Second},
			[]time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 60 * time.Second}},
		{"multiplier 3", Exponential{Initial: time.Millisecond, Max: time.Second, Multiplier: 3},
			[]time.Duration{time.Millisecond, 3 * time.Millisecond, 9 * time.Millisecond, 27 * time.Millisecond}},
		{"multiplier 1 is constant", Exponential{Initial: 5 * time.Second, Multiplier: 1},
			[]time.Duration{5 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"initial above default max raises max", Exponential{Initial: 90 * time.Second},
			[]time.Duration{90 * time.Second, 90 * time.Second}},
		{"fractional multiplier", Exponential{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 1.5},
			[]time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, want := range tt.want {
				if got := tt.e.Ceiling(i + 1); got != want {
					t.Errorf("Ceiling(%d) = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

func TestExponentialHugeN(t *testing.T) {
	e := Exponential{Initial: time.Nanosecond, Max: time.Hour, Multiplier: 10, NoJitter: true}
	for _, n := range []int{64, 1000, 1e6, math.MaxInt32, math.MaxInt} {
		if got := e.Delay(n); got != time.Hour {
			t.Errorf("Delay(%d) = %v, want the cap 1h", n, got)
		}
	}
}

func TestExponentialNBelowOne(t *testing.T) {
	e := Exponential{NoJitter: true}
	for _, n := range []int{0, -1, math.MinInt} {
		if got := e.Delay(n); got != time.Second {
			t.Errorf("Delay(%d) = %v, want Delay(1) = 1s", n, got)
		}
	}
}

func TestExponentialJitterRule(t *testing.T) {
	ceiling := 8 * time.Second // n = 4 on the default curve
	tests := []struct {
		name string
		e    Exponential
		u    float64
		want time.Duration
	}{
		{"default jitter, u=0 keeps the ceiling", Exponential{}, 0, ceiling},
		{"default jitter, u=0.5 cuts a quarter", Exponential{}, 0.5, 6 * time.Second},
		{"default jitter, u near 1 approaches half", Exponential{}, 0.999999, ceiling - time.Duration(float64(ceiling)*0.5*0.999999)},
		{"full jitter, u=0.75", Exponential{Jitter: 1}, 0.75, 2 * time.Second},
		{"no jitter ignores u", Exponential{NoJitter: true, Jitter: 1}, 0.9, ceiling},
		{"rand above range is clamped", Exponential{Jitter: 1}, 7, 0},
		{"rand below range is clamped", Exponential{Jitter: 1}, -3, ceiling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.e
			e.Rand = func() float64 { return tt.u }
			if got := e.Delay(4); got != tt.want {
				t.Errorf("Delay(4) = %v, want %v", got, tt.want)
			}
		})
	}
}

// The properties every Exponential must keep, over many random draws with the
// real random source: never negative, never above Max, never below the
// jitter floor, and the ceiling never decreases as n grows.
func TestExponentialProperties(t *testing.T) {
	policies := []Exponential{
		{},
		{Initial: 10 * time.Second, Max: 60 * time.Second},
		{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 1.1, Jitter: 1},
		{Initial: time.Nanosecond, Max: time.Duration(math.MaxInt64), Multiplier: 1000, Jitter: 0.25},
	}
	for _, e := range policies {
		_, limit, _ := e.effective()
		j := e.jitter()
		prev := time.Duration(0)
		for n := 1; n <= 200; n++ {
			c := e.Ceiling(n)
			if c < prev {
				t.Fatalf("%+v: Ceiling(%d) = %v < Ceiling(%d) = %v", e, n, c, n-1, prev)
			}
			prev = c
			floor := time.Duration(float64(c) * (1 - j))
			for range 50 {
				d := e.Delay(n)
				if d < 0 || d > limit || d > c || d < floor-1 {
					t.Fatalf("%+v: Delay(%d) = %v outside [%v, %v], max %v", e, n, d, floor, c, limit)
				}
			}
		}
	}
}

// Invalid fields must not make Delay return something a supervisor cannot use.
func TestExponentialInvalidFieldsStayInRange(t *testing.T) {
	for _, e := range []Exponential{
		{Initial: -time.Second},
		{Max: -time.Second},
		{Multiplier: -3},
		{Multiplier: math.NaN()},
		{Multiplier: math.Inf(1)},
		{Multiplier: 0.5},
		{Jitter: -1},
		{Jitter: math.NaN()},
		{Jitter: 5},
		{Initial: time.Hour, Max: time.Second},
	} {
		for _, n := range []int{1, 2, 3, 100, math.MaxInt} {
			_, limit, _ := e.effective()
			if d := e.Delay(n); d < 0 || d > limit {
				t.Errorf("%+v: Delay(%d) = %v outside [0, %v]", e, n, d, limit)
			}
		}
	}
}

func TestExponentialValidate(t *testing.T) {
	tests := []struct {
		name      string
		e         Exponential
		wantField string
	}{
		{"zero value", Exponential{}, ""},
		{"daemon config values", Exponential{Initial: 10 * time.Second, Max: 60 * time.Second}, ""},
		{"max equal initial", Exponential{Initial: time.Second, Max: time.Second}, ""},
		{"only max above default initial", Exponential{Max: 2 * time.Second}, ""},
		{"negative initial", Exponential{Initial: -1}, "Initial"},
		{"negative max", Exponential{Max: -time.Second}, "Max"},
		{"max below initial", Exponential{Initial: 10 * time.Second, Max: 5 * time.Second}, "Max"},
		{"max below default initial", Exponential{Max: 500 * time.Millisecond}, "Max"},
		{"multiplier below one", Exponential{Multiplier: 0.5}, "Multiplier"},
		{"negative multiplier", Exponential{Multiplier: -2}, "Multiplier"},
		{"NaN multiplier", Exponential{Multiplier: math.NaN()}, "Multiplier"},
		{"infinite multiplier", Exponential{Multiplier: math.Inf(1)}, "Multiplier"},
		{"negative jitter", Exponential{Jitter: -0.1}, "Jitter"},
		{"jitter above one", Exponential{Jitter: 1.5}, "Jitter"},
		{"NaN jitter", Exponential{Jitter: math.NaN()}, "Jitter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertFieldError(t, tt.e.Validate(), tt.wantField)
		})
	}
}

// assertFieldError checks that err is nil when wantField is empty, and
// otherwise a *config.FieldError naming wantField.
func assertFieldError(t *testing.T, err error, wantField string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *config.FieldError naming %q", err, wantField)
	}
	if fe.Field != wantField {
		t.Fatalf("error names field %q, want %q (%v)", fe.Field, wantField, err)
	}
}

func BenchmarkExponentialDelay(b *testing.B) {
	e := Exponential{Initial: 10 * time.Second, Max: time.Minute}
	b.ReportAllocs()
	var sink time.Duration
	for i := 0; b.Loop(); i++ {
		sink += e.Delay(i%20 + 1)
	}
	if sink < 0 {
		b.Fatal("negative delay")
	}
}

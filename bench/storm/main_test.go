package main

import (
	"testing"
	"time"

	"github.com/tend-dev/tend/internal/testagent"
)

func TestSummarise(t *testing.T) {
	r := result{}
	for i := 100; i >= 1; i-- {
		r.Lat = append(r.Lat, time.Duration(i)*20*time.Millisecond)
	}
	r.summarise()
	if r.Restarts != 100 || r.P50 != 1020*time.Millisecond || r.P99 != 2000*time.Millisecond || r.Max != 2*time.Second || r.OverSec != 50 {
		t.Fatalf("summary %+v", r)
	}
}

// A short storm in each mode records one latency per restart.
func TestShortStorm(t *testing.T) {
	bin, err := testagent.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"bare", "tend"} {
		r, err := measure(mode, bin, 3, 200*time.Millisecond, 1500*time.Millisecond, false)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if r.Restarts < 3 || r.P50 <= 0 || r.P50 > r.Max {
			t.Fatalf("%s: implausible result %+v", mode, r)
		}
	}
}

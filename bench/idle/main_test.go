//go:build linux

package main

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A small run of each mode measures something and stops every child.
func TestMeasureSmoke(t *testing.T) {
	for _, mode := range []string{"bare", "tend"} {
		r, err := measure(mode, 5, 50*time.Millisecond, mode == "tend")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if r.N != 5 || r.Threads == 0 || r.RSSKiB == 0 || r.StartMs <= 0 {
			t.Fatalf("%s: implausible result %+v", mode, r)
		}
	}
}

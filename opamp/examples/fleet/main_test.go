package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo runs to its end: connected, a config applied, a bad one
// rolled back.
func TestFleetDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	if err := run("127.0.0.1:0", false); err != nil {
		t.Fatal(err)
	}
}

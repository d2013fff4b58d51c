package backoff_test

import (
	"fmt"
	"time"

	"github.com/tend-dev/tend/backoff"
	"sigs.k8s.io/yaml"
)

// The zero Exponential is the default curve. NoJitter makes it exact, which
// is what this example prints; real supervisors keep the jitter.
func ExampleExponential() {
	p := backoff.Exponential{NoJitter: true}
	for n := 1; n <= 8; n++ {
		fmt.Print(p.Delay(n), " ")
	}
	fmt.Println()
	// Output: 1s 2s 4s 8s 16s 32s 1m0s 1m0s
}

// Steps reproduces systemd's RestartSec=1s, RestartMaxDelaySec=16s,
// RestartSteps=4.
func ExampleSteps() {
	p := backoff.Steps{Min: time.Second, Max: 16 * time.Second, Steps: 4}
	for n := 1; n <= 6; n++ {
		fmt.Print(p.Delay(n), " ")
	}
	fmt.Println()
	// Output: 1s 2s 4s 8s 16s 16s
}

// A host decodes the restart section users already write and gets a
// validated policy.
func ExampleConfig() {
	var c backoff.Config
	if err := yaml.UnmarshalStrict([]byte("backoff_base: 10s\nbackoff_max: 60s\n"), &c); err != nil {
		fmt.Println(err)
		return
	}
	p, err := c.Policy()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Ceiling(1), p.Ceiling(2), p.Ceiling(3), p.Ceiling(4))

	c.Max = c.Base / 2
	_, err = c.Policy()
	fmt.Println(err)
	// Output:
	// 10s 20s 40s 1m0s
	// field "backoff_max" = 5s: must not be less than backoff_base (10s)
}

func ExampleFunc() {
	linear := backoff.Func(func(n int) time.Duration { return time.Duration(n) * 500 * time.Millisecond })
	fmt.Println(linear.Delay(1), linear.Delay(4))
	// Output: 500ms 2s
}

package cgroup_test

import (
	"errors"
	"fmt"

	"github.com/tend-dev/tend/internal/cgroup"
)

// Detect either finds a layout the host can use or says why not, in an
// error a host can log as it is.
func ExampleDetect() {
	h, err := cgroup.Detect()
	if err != nil {
		fmt.Println(errors.Is(err, cgroup.ErrUnavailable))
		return
	}
	fmt.Println(h.Describe() != "")
	// Output: true
}

package config_test

import (
	"fmt"

	"github.com/tend-dev/tend/config"
	"sigs.k8s.io/yaml"
)

func ExampleDuration() {
	var c struct {
		Interval config.Duration `json:"interval"`
		Timeout  config.Duration `json:"heartbeat_timeout"`
	}
	if err := yaml.UnmarshalStrict([]byte("interval: 30s\nheartbeat_timeout: 90\n"), &c); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Interval, c.Timeout.Std().Minutes())
	// Output: 30s 1.5
}

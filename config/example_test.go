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

func ExampleParseBytes() {
	for _, s := range []string{"512Mi", "1.5Gi", "200M"} {
		b, _ := config.ParseBytes(s)
		fmt.Println(s, int64(b), b)
	}
	cpu, _ := config.ParseCPUs("500m")
	fmt.Println("500m", float64(cpu))
	// Output:
	// 512Mi 536870912 512Mi
	// 1.5Gi 1610612736 1536Mi
	// 200M 200000000 200000000
	// 500m 0.5
}

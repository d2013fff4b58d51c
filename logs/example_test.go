package logs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tend-dev/tend/logs"
)

// An agent's stdout and stderr go to one rotating file as whole lines;
// Tail and Search read it back, across rotations.
func Example() {
	dir, err := os.MkdirTemp("", "logs-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	r, err := logs.New(logs.Options{
		Path:       filepath.Join(dir, "filebeat.log"),
		MaxSizeMB:  10,
		MaxBackups: 5,
		Compress:   true,
		Prefix:     logs.Prefix{Stream: true},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	stdout, stderr := r.Stream("stdout"), r.Stream("stderr")
	fmt.Fprintln(stdout, "harvester started")
	fmt.Fprintln(stderr, "connection refused: 10.0.0.7:9200")
	r.Rotate()
	fmt.Fprintln(stdout, "connected to 10.0.0.7:9200")
	r.Close()

	last, _ := logs.Tail(r.Path(), 2)
	fmt.Println(last)
	logs.Search(context.Background(), r.Path(), logs.Query{Substring: "refused"}, func(m logs.Match) bool {
		fmt.Println(m.Line, m.Text)
		return true
	})
	// Output:
	// [stderr: connection refused: 10.0.0.7:9200 stdout: connected to 10.0.0.7:9200]
	// 2 stderr: connection refused: 10.0.0.7:9200
}

package reload_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tend-dev/tend/reload"
)

// Watch an agent's config file and act on each real change; an editor's
// atomic save is seen like any other write.
func ExampleWatcher() {
	dir, _ := os.MkdirTemp("", "reload-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "blackbox.yml")
	os.WriteFile(path, []byte("modules: {}\n"), 0o640)

	changed := make(chan reload.Change, 1)
	w, err := reload.NewWatcher(reload.Options{Debounce: 50 * time.Millisecond}, func(ctx context.Context, c reload.Change) {
		changed <- c // a host would Reload the agent here
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	w.Add(path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)

	reload.WriteFile(path, []byte("modules:\n  http_2xx:\n    prober: http\n"), 0o640)
	c := <-changed
	fmt.Printf("%s changed: %d bytes\n", filepath.Base(c.Path), len(c.Data))
	cancel()
	<-done
	// Output: blackbox.yml changed: 38 bytes
}

// Update merges a patch into a YAML config and writes it back atomically.
func ExampleUpdate() {
	dir, _ := os.MkdirTemp("", "reload-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "filebeat.yml")
	os.WriteFile(path, []byte("output:\n  elasticsearch:\n    hosts: [a:9200]\nlogging:\n  level: info\n"), 0o640)

	err := reload.Update(path, map[string]any{
		"output":  map[string]any{"elasticsearch": map[string]any{"hosts": []any{"b:9200"}}},
		"logging": nil, // null deletes
	}, nil)
	b, _ := os.ReadFile(path)
	fmt.Print(string(b), err)
	// Output:
	// output:
	//   elasticsearch:
	//     hosts:
	//     - b:9200
	// <nil>
}

package notify_test

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/internal/notify"
)

func ExampleList() {
	var subscribers notify.List[string]
	done := make(chan struct{})
	cancel := subscribers.Add(func(e string, missed int) {
		fmt.Println(e, missed)
		if e == "second" {
			close(done)
		}
	}, func(e string) string { return e }, logr.Discard())
	defer cancel()
	subscribers.Publish("first")
	subscribers.Publish("second")
	<-done
	// Output:
	// first 0
	// second 0
}

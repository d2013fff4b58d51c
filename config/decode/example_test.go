package decode_test

import (
	"fmt"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/config/decode"
)

// A host's own config file, read into its own struct; a bad value is
// reported with the key that holds it.
func ExampleStrict() {
	var file struct {
		Agents []struct {
			Name    string          `json:"name"`
			Timeout config.Duration `json:"timeout"`
		} `json:"agents"`
	}
	err := decode.Strict([]byte("agents:\n  - name: filebeat\n    timeout: 30s\n"), &file)
	fmt.Println(file.Agents[0].Name, file.Agents[0].Timeout, err)
	err = decode.Strict([]byte("agents:\n  - name: telegraf\n    timeout: soon\n"), &file)
	fmt.Println(err)
	// Output:
	// filebeat 30s <nil>
	// field "agents[0].timeout" (line 3): duration "soon": want a value such as "30s" or "1m30s": time: invalid duration "soon"
}

package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tend-dev/tend/internal/atomicfile"
)

func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "atomicfile")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	if err := atomicfile.Write(path, []byte(`{"ok":true}`), 0o600); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(path)
	info, _ := os.Stat(path)
	fmt.Println(string(b), info.Mode().Perm())
	// Output: {"ok":true} -rw-------
}

package tend_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// The README's Go examples must compile against this checkout.
func TestReadmeExamplesCompile(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go example")
	}
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gosum, _ := os.ReadFile("go.sum")
	for i, b := range blocks {
		dir := t.TempDir()
		mod := "module readmecheck\n\ngo 1.25\n\nrequire github.com/tend-dev/tend v0.0.0\n\nreplace github.com/tend-dev/tend => " + root + "\n"
		mod += string(regexp.MustCompile(`(?s)require \((.*?)\)`).Find(gomod)) + "\n"
		write(t, filepath.Join(dir, "go.mod"), []byte(mod))
		write(t, filepath.Join(dir, "go.sum"), gosum)
		write(t, filepath.Join(dir, "main.go"), b[1])
		cmd := exec.Command("go", "vet", "-mod=mod", ".")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("README example %d does not compile: %v\n%s", i+1, err, out)
		}
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

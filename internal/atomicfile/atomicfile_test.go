package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tend-dev/tend/internal/testagent"
	"go.uber.org/goleak"
)

const writerEnv = "TEND_ATOMICFILE_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		writeForever(path)
		return
	}
	goleak.VerifyTestMain(m)
}

// writeForever rewrites path with ever larger, self-checking content until
// it is killed.
func writeForever(path string) {
	for i := 1; ; i++ {
		line := fmt.Sprintf("generation %d\n", i)
		if err := Write(path, []byte(strings.Repeat(line, 1+i%500)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func TestWriteReplacesAndKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yml")
	if err := Write(path, []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o640 {
		t.Fatalf("new file mode %v, want 0640", info.Mode().Perm())
	}
	os.Chmod(path, 0o604)
	if err := Write(path, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(path)
	b, _ := os.ReadFile(path)
	if info.Mode().Perm() != 0o604 || string(b) != "b" {
		t.Fatalf("after replace: mode %v content %q, want 0604 and b", info.Mode().Perm(), b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteIntoMissingDirectoryFails(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
}

// A writer process killed at random moments never leaves a torn file: every
// read finds one whole generation.
func TestWriteSurvivesKillMidway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	rounds := 30
	if testing.Short() {
		rounds = 5
	}
	testagent.KillMidWrite(t, writerEnv, path, rounds, func(int) {
		if b, err := os.ReadFile(path); err == nil { // absent: killed before its first rename
			checkWhole(t, b)
		}
	})
}

func checkWhole(t *testing.T, b []byte) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	gen, err := strconv.Atoi(strings.TrimPrefix(lines[0], "generation "))
	if err != nil {
		t.Fatalf("torn file: first line %q", lines[0])
	}
	if len(lines) != 1+gen%500 {
		t.Fatalf("torn file: generation %d has %d lines, want %d", gen, len(lines), 1+gen%500)
	}
	for _, l := range lines {
		if l != lines[0] {
			t.Fatalf("torn file: mixed lines %q and %q", lines[0], l)
		}
	}
}

//go:build linux

package logs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountSmallTmpfs mounts a 512 KiB tmpfs for the test, or skips.
func mountSmallTmpfs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			exec.Command("umount", "-l", dir).Run()
		}
	})
	return dir
}

// On a full disk the Rotator counts and drops without failing the writer,
// and recovers by itself once there is room again.
func TestDiskFullDropsThenRecovers(t *testing.T) {
	r, path := rotatorOnSmallTmpfs(t)
	freeSpace := fillDisk(t, filepath.Dir(path))

	line := []byte(strings.Repeat("z", 99) + "\n")
	for range 100 {
		if n, err := r.Write(line); n != len(line) || err != nil {
			t.Fatalf("Write on a full disk = %d, %v; want the bytes accepted and no error", n, err)
		}
	}
	st := r.Stats()
	if st.Errors == 0 || st.BytesDropped == 0 || !strings.Contains(st.LastError.Error(), "no space") {
		t.Fatalf("stats on a full disk %+v, want errors and dropped bytes", st)
	}

	freeSpace()
	r.Write([]byte("after recovery\n"))
	b, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(b), "after recovery\n") {
		t.Fatalf("after freeing space the file ends %q", b[max(0, len(b)-40):])
	}
}

// A write that the full disk cuts short leaves a torn line; the next
// write that gets through ends it first, so the line after the drop is
// whole instead of glued to the fragment.
func TestDiskFullTornLineIsEnded(t *testing.T) {
	r, path := rotatorOnSmallTmpfs(t)
	line := []byte(strings.Repeat("z", 99) + "\n")
	r.Write(line) // the log's first page exists; the filler takes every other
	freeSpace := fillDisk(t, filepath.Dir(path))
	for range 100 { // the page holds 40 more lines and a bit: the 41st is torn
		r.Write(line)
	}
	freeSpace()
	dropped := r.Stats().LinesDropped
	r.Write([]byte("after recovery\n"))
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	whole := 0
	for _, l := range lines {
		if l == strings.Repeat("z", 99) {
			whole++
		}
	}
	if dropped != int64(101-whole) {
		t.Fatalf("LinesDropped %d, but %d of 101 lines are whole in the file", dropped, whole)
	}
	if last := lines[len(lines)-1]; last != "after recovery" {
		t.Fatalf("the line after the drop is %q, want it whole", last)
	}
	if torn := lines[len(lines)-2]; len(torn) >= 99 || strings.Trim(torn, "z") != "" {
		t.Fatalf("before it %q, want the torn fragment of a line", torn)
	}
}

// rotatorOnSmallTmpfs returns a Rotator on a fresh small tmpfs, closed at
// cleanup, and its path.
func rotatorOnSmallTmpfs(t *testing.T) (*Rotator, string) {
	t.Helper()
	path := filepath.Join(mountSmallTmpfs(t), "agent.log")
	r, err := New(Options{Path: path, MaxSizeMB: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, path
}

// fillDisk takes every free block of dir's filesystem and returns what
// gives them back.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 2<<20)) //nolint:errcheck // more than the filesystem holds: it fails, by design
	f.Close()
	return func() { os.Remove(filler) }
}

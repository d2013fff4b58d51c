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
	dir := mountSmallTmpfs(t)
	path := filepath.Join(dir, "agent.log")
	r, err := New(Options{Path: path, MaxSizeMB: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	filler := filepath.Join(dir, "filler")
	f, _ := os.Create(filler)
	f.Write(make([]byte, 2<<20)) // more than the filesystem holds
	f.Close()

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

	os.Remove(filler)
	r.Write([]byte("after recovery\n"))
	b, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(b), "after recovery\n") {
		t.Fatalf("after freeing space the file ends %q", b[max(0, len(b)-40):])
	}
}

package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseStat(t *testing.T) {
	line := "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 98765 1000000 321 18446744073709551615\n"
	st, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{State: 'S', PPID: 1, PGRP: 1234, UTime: 17, STime: 5, StartTicks: 98765, RSSPages: 321}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Live() || st.PPID != os.Getppid() || st.RSSPages <= 0 || st.StartTicks == 0 {
		t.Fatalf("own stat %+v", st)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5 6"))
	f.Add([]byte(")"))
	f.Add([]byte("1 (x) Z"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err == nil && st.State == 0 {
			t.Fatalf("parsed %q without a state", b)
		}
	})
}

// Find sees a live child by its parent, and no longer once it is reaped.
func TestFindChildren(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	isChild := func(_ int, st Stat) bool { return st.PPID == os.Getpid() && st.Live() }
	found, err := Find(isChild)
	if err != nil || !slices.Contains(found, cmd.Process.Pid) {
		t.Fatalf("Find = %v, %v; want it to hold %d", found, err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if found, _ := Find(isChild); slices.Contains(found, cmd.Process.Pid) {
		t.Fatalf("Find still holds reaped %d", cmd.Process.Pid)
	}
}

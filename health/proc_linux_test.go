package health

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v3/process"
)

// The /proc reader agrees with gopsutil v3 (the reader used where there is
// no /proc) on live processes: this test process, busy, and an idle
// child.
func TestProcReaderAgreesWithGopsutil(t *testing.T) {
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); { // CPU time to compare
	}
	var buf [512]byte
	for _, pid := range []int{os.Getpid(), child.Process.Pid} {
		ours, err := readProc(pid, buf[:])
		if err != nil {
			t.Fatal(err)
		}
		p, err := process.NewProcess(int32(pid))
		if err != nil {
			t.Fatal(err)
		}
		times, err1 := p.Times()
		mem, err2 := p.MemoryInfo()
		ppid, err3 := p.Ppid()
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatal(err1, err2, err3)
		}
		theirs := time.Duration((times.User + times.System) * float64(time.Second))
		// Read a moment apart: CPU may have moved by a few ticks, RSS by a
		// few pages (this process allocates while it runs).
		if d := ours.cpu - theirs; d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("pid %d: CPU %v here, %v by gopsutil", pid, ours.cpu, theirs)
		}
		if d := int64(ours.rss) - int64(mem.RSS); d < -1<<20 || d > 1<<20 {
			t.Errorf("pid %d: RSS %d here, %d by gopsutil", pid, ours.rss, mem.RSS)
		}
		if ours.ppid != int(ppid) || !ours.live {
			t.Errorf("pid %d: ppid %d live %v here, ppid %d by gopsutil", pid, ours.ppid, ours.live, ppid)
		}
	}
}

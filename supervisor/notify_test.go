package supervisor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseNotify(t *testing.T) {
	ptr := func(s string) *string { return &s }
	dur := func(d time.Duration) *time.Duration { return &d }
	three := 3
	for _, tc := range []struct {
		in   string
		want notifyMessage
	}{
		{"READY=1", notifyMessage{ready: true}},
		{"READY=0\nSTOPPING=2", notifyMessage{}},
		{"RELOADING=1\nMONOTONIC_USEC=1500\nSTATUS=reloading config", notifyMessage{reloading: true, monotonic: 1500 * time.Microsecond, status: ptr("reloading config")}},
		{"STATUS=a=b\nSTATUS=", notifyMessage{status: ptr("")}}, // the last wins; '=' in a value is kept
		{"WATCHDOG=1\nWATCHDOG_USEC=250000", notifyMessage{watchdog: true, watchdogPeriod: dur(250 * time.Millisecond)}},
		{"WATCHDOG=trigger", notifyMessage{trigger: true}},
		{"MAINPID=42\nERRNO=98\nEXIT_STATUS=3", notifyMessage{mainPID: 42, errno: 98, exitStatus: &three}},
		{"MAINPID=-1\nERRNO=x\nEXIT_STATUS=300\nEXTEND_TIMEOUT_USEC=-5", notifyMessage{}},
		{"EXTEND_TIMEOUT_USEC=18446744073709551615", notifyMessage{extend: dur(time.Duration(1<<63-1) / 1000 * 1000)}},
		{"FDSTORE=1\nFDNAME=web", notifyMessage{fdStore: true, fdName: "web"}},
		{"FDSTOREREMOVE=1\nFDNAME=web\nBARRIER=1\nX_UNKNOWN=1\ngarbage", notifyMessage{fdStoreRemove: true, fdName: "web"}},
	} {
		got := parseNotify([]byte(tc.in))
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(notifyMessage{})); diff != "" {
			t.Errorf("parseNotify(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// Messages apply in order: a reload is done by a READY=1 after the
// latest RELOADING=1, and only WATCHDOG=1 alone does not wake the owner.
func TestNotifyStateOrder(t *testing.T) {
	n := newNotifyState()
	now := time.Unix(100, 0)
	n.apply(parseNotify([]byte("READY=1")), now)
	<-n.ready
	<-n.news
	n.apply(parseNotify([]byte("WATCHDOG=1")), now.Add(time.Second))
	select {
	case <-n.news:
		t.Fatal("a keep-alive alone woke the owner")
	default:
	}
	if got := n.keepalive(); !got.Equal(now.Add(time.Second)) {
		t.Fatalf("keepalive %v", got)
	}
	n.apply(parseNotify([]byte("RELOADING=1")), now)
	s := n.snapshot()
	if s.readySeq >= s.reloadingSeq {
		t.Fatalf("after RELOADING=1: %+v, want the reload under way", s)
	}
	n.apply(parseNotify([]byte("READY=1\nSTATUS=reloaded")), now)
	if s = n.snapshot(); s.readySeq <= s.reloadingSeq || *s.status != "reloaded" || s.seq != 4 {
		t.Fatalf("after READY=1: %+v, want the reload done", s)
	}
}

func FuzzParseNotify(f *testing.F) {
	for _, seed := range []string{"READY=1\nSTATUS=x", "RELOADING=1\nMONOTONIC_USEC=1", "EXTEND_TIMEOUT_USEC=99999999999999999999", "FDSTORE=1\nFDNAME=a:b", "=\n=="} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := parseNotify(data)
		if m.extend != nil && *m.extend < 0 || m.watchdogPeriod != nil && *m.watchdogPeriod < 0 || m.monotonic < 0 {
			t.Fatalf("negative duration from %q: %+v", data, m)
		}
		if m.mainPID < 0 || m.errno < 0 || m.exitStatus != nil && (*m.exitStatus < 0 || *m.exitStatus > 255) {
			t.Fatalf("out of range from %q: %+v", data, m)
		}
	})
}

package supervisor

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// Whatever a state holds, parsing never panics, trusts nothing but its
// own version, and always gives the envelope's descriptors back when it
// can read them, so that they can be closed.
func FuzzParseHandover(f *testing.F) {
	good, _ := json.Marshal(handoverState{Version: handoverVersion, FDs: []int{5, 6}, HostFiles: map[string]int{"api": 7},
		Agents: []agentState{{Name: "a", Child: &childState{PID: 42, PidFD: 5, Streams: []streamState{{Name: "stdout", FD: 6, Pending: []byte("half")}}}}}})
	f.Add(good)
	f.Add([]byte(`{"version":99,"fds":[3,4],"agents":{"not":"a list"}}`))
	f.Add([]byte(`{"version":1,"fds":"x"}`))
	f.Add([]byte(`garbage`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseHandover(data)
		if err == nil && (st == nil || st.Version != handoverVersion) {
			t.Fatalf("accepted a state of version %v", st)
		}
		var envelope struct {
			FDs []int `json:"fds"`
		}
		if json.Unmarshal(data, &envelope) == nil && len(envelope.FDs) > 0 && (st == nil || len(st.FDs) != len(envelope.FDs)) {
			t.Fatalf("the envelope's descriptors %v were lost (%v)", envelope.FDs, st)
		}
	})
}

// A TEND_HANDOVER that does not name a state file (a pipe, which would
// block a read for ever, a closed descriptor, no number) is refused at
// once.
func TestReadHandoverRefusesWhatIsNoStateFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, v := range []string{strconv.Itoa(int(r.Fd())), "1000000", "x", "2"} {
		if st, err := readHandover(v); err == nil || st != nil {
			t.Fatalf("readHandover(%q) = %v, %v; want an error", v, st, err)
		}
	}
}

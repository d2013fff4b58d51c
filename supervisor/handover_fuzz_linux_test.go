package supervisor

import (
	"encoding/json"
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

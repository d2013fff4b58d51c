package config

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	tests := []struct{ name, base, patch, want string }{
		{"maps merge", `{"a":1,"b":{"c":2,"d":3}}`, `{"b":{"d":4,"e":5}}`, `{"a":1,"b":{"c":2,"d":4,"e":5}}`},
		{"lists replace", `{"args":["-a","-b"]}`, `{"args":["-c"]}`, `{"args":["-c"]}`},
		{"null deletes", `{"a":1,"b":2}`, `{"a":null}`, `{"b":2}`},
		{"null of missing key", `{"a":1}`, `{"z":null}`, `{"a":1}`},
		{"scalar replaces map", `{"a":{"x":1}}`, `{"a":"flat"}`, `{"a":"flat"}`},
		{"map replaces scalar", `{"a":"flat"}`, `{"a":{"x":1,"y":null}}`, `{"a":{"x":1}}`},
		{"non-object patch replaces", `{"a":1}`, `[1,2]`, `[1,2]`},
		{"agent_defaults under an agent", `{"health_check":{"interval":"30s","cpu_threshold":80},"restart":{"max_retries":10,"policy":"always"}}`,
			`{"id":"x","restart":{"policy":"on-failure"}}`,
			`{"id":"x","health_check":{"interval":"30s","cpu_threshold":80},"restart":{"max_retries":10,"policy":"on-failure"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, patch, want := decode(t, tt.base), decode(t, tt.patch), decode(t, tt.want)
			baseCopy, patchCopy := decode(t, tt.base), decode(t, tt.patch)
			got := Merge(base, patch)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Merge (-want +got):\n%s", diff)
			}
			if !cmp.Equal(base, baseCopy) || !cmp.Equal(patch, patchCopy) {
				t.Fatal("Merge modified its arguments")
			}
		})
	}
}

func TestMergeResultSharesNothing(t *testing.T) {
	base := decode(t, `{"a":{"b":[1]}}`)
	got := Merge(base, decode(t, `{"c":1}`)).(map[string]any)
	got["a"].(map[string]any)["b"].([]any)[0] = 99.0
	if base.(map[string]any)["a"].(map[string]any)["b"].([]any)[0] != 1.0 {
		t.Fatal("the result shares a list with base")
	}
}

func decode(t testing.TB, s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

// FuzzMerge checks the merge laws on arbitrary documents: merging a patch
// twice changes nothing more (idempotence), and every non-null key of an
// object patch ends up in the result.
func FuzzMerge(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":2}}`, `{"b":{"c":null,"d":[1]}}`)
	f.Add(`[1]`, `{"x":{"y":{"z":null}}}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		var base, patch any
		if json.Unmarshal([]byte(a), &base) != nil || json.Unmarshal([]byte(b), &patch) != nil {
			return
		}
		once := Merge(base, patch)
		twice := Merge(once, patch)
		if !cmp.Equal(once, twice) {
			t.Fatalf("not idempotent: %v then %v", once, twice)
		}
		if pm, ok := patch.(map[string]any); ok {
			om := once.(map[string]any)
			for k, v := range pm {
				if _, present := om[k]; present == (v == nil) {
					t.Fatalf("key %q: patch %v, result %v", k, v, om[k])
				}
			}
		}
	})
}

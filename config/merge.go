package config

// Merge lays patch over base, the way a JSON merge patch (RFC 7386) does:
// where both hold an object the keys merge recursively, a null in patch
// deletes the key, and anything else in patch (a list, a scalar, an object
// over a non-object) replaces what base had. Values are the generic form
// encoding/json and sigs.k8s.io/yaml decode into (map[string]any, []any,
// string, float64, bool, nil). Neither argument is modified; the result
// shares no map with them.
//
// It serves both agent config updates and the daemon config format's agent_defaults, which
// apply under every agent with the agent's own values winning:
// Merge(defaults, agent).
func Merge(base, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return clone(patch)
	}
	bm, ok := base.(map[string]any)
	if !ok {
		bm = nil
	}
	out := make(map[string]any, len(bm)+len(pm))
	for k, v := range bm {
		out[k] = clone(v)
	}
	for k, v := range pm {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = Merge(out[k], v)
	}
	return out
}

// clone deep-copies the maps and lists of a generic JSON value.
func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = clone(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = clone(e)
		}
		return out
	default:
		return v
	}
}

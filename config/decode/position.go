package decode

import (
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lineOf returns the line of the key (or list element) at path in the
// YAML document data, or of the deepest part of path it finds; 0 if none.
// sigs.k8s.io/yaml turns YAML into JSON and keeps no positions, so the
// document is parsed again, as nodes, only when there is an error to place.
func lineOf(data []byte, path []step) int {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	n, line := root.Content[0], 0
	for _, s := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch {
		case s.isIndex && n.Kind == yaml.SequenceNode && s.index < len(n.Content):
			n = n.Content[s.index]
			line = n.Line
		case !s.isIndex && n.Kind == yaml.MappingNode:
			next := (*yaml.Node)(nil)
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s.key {
					line, next = n.Content[i].Line, n.Content[i+1]
					break
				}
			}
			if next == nil {
				return line
			}
			n = next
		default:
			return line
		}
	}
	return line
}

// knownKeys lists the keys the Go type t takes at path (its json names,
// embedded structs' included), or nil where any key goes.
func knownKeys(t reflect.Type, path []step) []string {
	for _, s := range path {
		t = deref(t)
		switch {
		case s.isIndex && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			t = t.Elem()
		case !s.isIndex && t.Kind() == reflect.Map:
			t = t.Elem()
		case !s.isIndex && t.Kind() == reflect.Struct:
			f, ok := fieldByKey(t, s.key)
			if !ok {
				return nil
			}
			t = f
		default:
			return nil
		}
	}
	if t = deref(t); t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	eachKey(t, func(key string, _ reflect.Type) bool { keys = append(keys, key); return true })
	return keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldByKey(t reflect.Type, key string) (found reflect.Type, ok bool) {
	eachKey(t, func(k string, ft reflect.Type) bool {
		if k == key {
			found, ok = ft, true
		}
		return !ok
	})
	return found, ok
}

// eachKey calls fn with each json key of struct t and its type, until fn
// returns false; an embedded struct without a tag adds its own keys, as
// encoding/json does.
func eachKey(t reflect.Type, fn func(string, reflect.Type) bool) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-":
		case f.Anonymous && tag == "" && deref(f.Type).Kind() == reflect.Struct:
			if !eachKey(deref(f.Type), fn) {
				return false
			}
		case !f.IsExported():
		default:
			if tag == "" {
				tag = f.Name
			}
			if !fn(tag, f.Type) {
				return false
			}
		}
	}
	return true
}

// closest returns the key nearest to name, within an edit distance of a
// third of its length (at least 1), or "".
func closest(name string, keys []string) string {
	best, bestD := "", max(1, len(name)/3)+1
	for _, k := range keys {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and
// transpositions of adjacent letters that turn a into b (optimal string
// alignment): "nmae" is one from "name".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

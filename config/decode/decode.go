// Package decode reads a host's YAML or JSON config file into tend's
// structs strictly, naming the key path of a bad value. It stands apart
// from package config so that the supervisor, which needs only config's
// value types, does not pull a YAML parser into every host.
package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Strict reads a YAML or JSON document (JSON is YAML) into v strictly:
// unknown keys and bad values are errors. The error names the key path at
// fault, e.g. `field "agents[2].restart.backoff_base": duration "soon": ...`,
// even where encoding/json would only quote the value (a Duration's or
// another type's own decoding error).
func Strict(data []byte, v any) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	err = decodeStrict(js, v)
	if err == nil {
		return nil
	}
	var doc any
	if json.Unmarshal(js, &doc) != nil {
		return err
	}
	t := reflect.TypeOf(v).Elem()
	path := locate(t, doc, nil)
	if path == nil {
		return err
	}
	where := ""
	if line := lineOf(data, path); line > 0 {
		where = fmt.Sprintf(" (line %d)", line)
	}
	hint := ""
	if last := path[len(path)-1]; !last.isIndex && strings.Contains(err.Error(), "unknown field") {
		if near := closest(last.key, knownKeys(t, path[:len(path)-1])); near != "" {
			hint = fmt.Sprintf("; did you mean %q?", near)
		}
	}
	return fmt.Errorf("field %q%s: %w%s", render(path), where, err, hint)
}

func decodeStrict(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// locate finds the deepest key path whose value alone fails to decode into
// a fresh value of t, by decoding the document cut down to that one path;
// nil if there is none.
func locate(t reflect.Type, node any, steps []step) []step {
	if len(steps) > 0 && fails(t, steps, emptied(node)) {
		return nil // the container itself is wrong here, not something in it
	}
	switch n := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			path := append(append([]step(nil), steps...), step{key: k})
			if fails(t, path, n[k]) {
				if deeper := locate(t, n[k], path); deeper != nil {
					return deeper
				}
				return path
			}
		}
	case []any:
		for i, e := range n {
			path := append(append([]step(nil), steps...), step{index: i, isIndex: true})
			if fails(t, path, e) {
				if deeper := locate(t, e, path); deeper != nil {
					return deeper
				}
				return path
			}
		}
	}
	return nil
}

// emptied returns an empty container of node's kind.
func emptied(node any) any {
	switch node.(type) {
	case map[string]any:
		return map[string]any{}
	case []any:
		return []any{}
	}
	return node
}

// step is one key or list index of a path in the document.
type step struct {
	key     string
	index   int
	isIndex bool
}

// fails reports whether the document holding only value at path fails to
// decode into a fresh t. A list index is rebuilt as a one-element list.
func fails(t reflect.Type, path []step, value any) bool {
	doc := value
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].isIndex {
			doc = []any{doc}
		} else {
			doc = map[string]any{path[i].key: doc}
		}
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return false
	}
	return decodeStrict(js, reflect.New(t).Interface()) != nil
}

func render(path []step) string {
	var b []byte
	for i, s := range path {
		if s.isIndex {
			b = append(append(append(b, '['), strconv.Itoa(s.index)...), ']')
			continue
		}
		if i > 0 {
			b = append(b, '.')
		}
		b = append(b, s.key...)
	}
	return string(b)
}

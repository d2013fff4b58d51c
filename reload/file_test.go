package reload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tend-dev/tend/internal/testagent"
)

func TestDocumentMergeKeepsFormat(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "filebeat.yml")
	write(t, yml, "output:\n  elasticsearch:\n    hosts: [\"a:9200\"]\n    timeout: 10\nlogging:\n  level: info\n  to_files: true\n")
	err := Update(yml, map[string]any{
		"output":  map[string]any{"elasticsearch": map[string]any{"hosts": []any{"b:9200", "c:9200"}}},
		"logging": map[string]any{"level": "debug", "to_files": nil},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDocument(yml)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"output":  map[string]any{"elasticsearch": map[string]any{"hosts": []any{"b:9200", "c:9200"}, "timeout": 10.0}},
		"logging": map[string]any{"level": "debug"},
	}
	if diff := cmp.Diff(want, d.Data); diff != "" {
		t.Fatalf("merged document (-want +got):\n%s", diff)
	}
	raw, _ := os.ReadFile(yml)
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
		t.Fatalf("YAML written back as JSON: %s", raw)
	}

	js := filepath.Join(dir, "agent.json")
	write(t, js, `{"a":1}`)
	os.Chmod(js, 0o604)
	if err := Update(js, map[string]any{"b": true}, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(js)
	info, _ := os.Stat(js)
	if !strings.Contains(string(raw), `"b": true`) || info.Mode().Perm() != 0o604 {
		t.Fatalf("JSON update: %s mode %v", raw, info.Mode().Perm())
	}
	rejected := Update(js, map[string]any{"a": 2}, func([]byte) error { return errors.New("a must be 1") })
	raw2, _ := os.ReadFile(js)
	if rejected == nil || string(raw2) != string(raw) {
		t.Fatalf("a rejected update: %v, file changed: %v", rejected, string(raw2) != string(raw))
	}
	if _, err := ReadDocument(filepath.Join(dir, "agent.toml")); err == nil {
		t.Fatal("unknown extension accepted")
	}
}

// writeForever is the writer process of the crash test: it updates a YAML
// document until it is killed.
func writeForever(path string) {
	for i := 0; ; i++ {
		body := map[string]any{"generation": i, "payload": strings.Repeat("y", i%3000)}
		if err := Update(path, body, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

// A writer killed at random moments leaves a config that parses whole.
func TestUpdateSurvivesKillMidway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	write(t, path, "generation: -1\npayload: \"\"\n")
	testagent.KillMidWrite(t, writerEnv, path, 25, func(round int) {
		d, err := ReadDocument(path)
		if err != nil {
			t.Fatalf("round %d: torn config: %v", round, err)
		}
		gen := int(d.Data["generation"].(float64))
		if want := strings.Repeat("y", max(gen, 0)%3000); d.Data["payload"] != want {
			t.Fatalf("round %d: generation %d with a payload of %d bytes", round, gen, len(d.Data["payload"].(string)))
		}
	})
}

func FuzzFormatAndParse(f *testing.F) {
	f.Add("a.yaml", []byte("a: 1\nb: [x, y]\n"))
	f.Add("b.JSON", []byte(`{"a":{"b":null}}`))
	f.Add("c.yml", []byte("- not a map\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		format, err := FormatOf(name)
		if err != nil {
			return
		}
		tree, err := Parse(data, format)
		if err != nil {
			return
		}
		d := &Document{Format: format, Data: tree}
		out, err := d.Marshal()
		if err != nil {
			t.Fatalf("cannot write back what was read: %v", err)
		}
		back, err := Parse(out, format)
		if err != nil || !cmp.Equal(normalize(tree), normalize(back)) {
			t.Fatalf("round trip changed the document: %v -> %s -> %v (%v)", tree, out, back, err)
		}
	})
}

// normalize maps int and float numbers to float64, as a JSON round trip does.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case int:
		return float64(v)
	case int64:
		return float64(v)
	}
	return v
}

package decode

import (
	"github.com/tend-dev/tend/config"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

type decodeInner struct {
	BackoffBase config.Duration `json:"backoff_base"`
	MaxRetries  int             `json:"max_retries"`
}

type decodeEmbedded struct {
	Name string `json:"name"`
}

type decodeAgent struct {
	decodeEmbedded
	Restart decodeInner `json:"restart"`
}

type decodeFile struct {
	Agents []decodeAgent `json:"agents"`
}

func TestDecodeNamesTheKeyPath(t *testing.T) {
	tests := map[string]string{
		"agents:\n- name: a\n- name: b\n  restart:\n    backoff_base: soon\n":          `field "agents[1].restart.backoff_base" (line 5): duration "soon"`,
		"agents:\n- name: a\n  restart:\n    max_retries: lots\n":                      `field "agents[0].restart.max_retries" (line 4)`,
		"agents:\n- name: a\n  restrt: {}\n":                                           `field "agents[0].restrt" (line 3): json: unknown field "restrt"; did you mean "restart"?`,
		"agents:\n- name: a\n  nmae: x\n":                                              `field "agents[0].nmae" (line 3): json: unknown field "nmae"; did you mean "name"?`,
		"agents:\n- name: a\n  zzzzzz: x\n":                                            `json: unknown field "zzzzzz"`,
		"{\"agents\": [{\"name\": \"a\"},\n {\"restart\": {\"max_retries\": \"x\"}}]}": `field "agents[1].restart.max_retries" (line 2)`,
		"agent: {}\n": `field "agent"`,
	}
	for doc, want := range tests {
		var f decodeFile
		err := Strict([]byte(doc), &f)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(doc, "zzzzzz") && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("%q: %v, want %s", doc, err, want)
		}
	}
	var f decodeFile
	if err := Strict([]byte("agents:\n- name: a\n  restart:\n    backoff_base: 5s\n"), &f); err != nil {
		t.Fatal(err)
	}
	if f.Agents[0].Name != "a" || f.Agents[0].Restart.BackoffBase.Std() != 5*time.Second {
		t.Fatalf("decoded %+v", f)
	}
	if err := Strict([]byte("agents: [unclosed\n"), &f); err == nil {
		t.Fatal("malformed YAML decoded")
	}
}

// FuzzDecode feeds arbitrary documents: Decode must never panic, and an
// error must come back for anything the strict decoder rejects.
func FuzzStrict(f *testing.F) {
	f.Add([]byte("agents:\n- name: a\n  restart:\n    backoff_base: 5s\n"))
	f.Add([]byte("agents: [{restart: {max_retries: [1]}}]"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var a, b decodeFile
		err := Strict(doc, &a)
		js, yerr := yaml.YAMLToJSON(doc)
		if yerr != nil {
			return
		}
		if strict := decodeStrict(js, &b); (strict == nil) != (err == nil) {
			t.Fatalf("Decode error %v but strict decoding error %v", err, strict)
		}
	})
}

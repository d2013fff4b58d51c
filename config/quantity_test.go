package config

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]Bytes{
		"512Mi": 512 << 20, "1.5Gi": 3 << 29, "200M": 200e6, "1k": 1000, "1048576": 1 << 20, "0": 0, "32Mi": 32 << 20,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Mi", "-1Mi", "12 Mi", "1e30", "NaN", "5MB", "1.5.5Gi"} {
		if _, err := ParseBytes(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseBytes(%q): %v, want an error quoting it", bad, err)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]CPUs{"0.5": 0.5, "500m": 0.5, "50%": 0.5, "2": 2, "200%": 2} {
		got, err := ParseCPUs(in)
		if err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-1", "half", "Inf", "1 core"} {
		if _, err := ParseCPUs(bad); err == nil {
			t.Errorf("ParseCPUs(%q) accepted", bad)
		}
	}
}

func TestQuantitiesRoundTripThroughJSON(t *testing.T) {
	var v struct {
		Mem Bytes `json:"mem"`
		CPU CPUs  `json:"cpu"`
	}
	if err := json.Unmarshal([]byte(`{"mem": "512Mi", "cpu": "250m"}`), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"mem":"512Mi","cpu":0.25}` {
		t.Fatalf("marshalled %s", b)
	}
	if err := json.Unmarshal([]byte(`{"mem": 1024, "cpu": 0.5}`), &v); err != nil || v.Mem != 1024 || v.CPU != 0.5 {
		t.Fatalf("numbers: %+v, %v", v, err)
	}
	if err := json.Unmarshal([]byte(`{"mem": true}`), &v); err == nil {
		t.Fatal("a boolean was accepted as a quantity")
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"512Mi", "1.5Gi", "200M", "0", "-1", "1e300Ti"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBytes(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseBytes(%q) = %d, negative", s, b)
		}
		again, err := ParseBytes(b.String())
		if err != nil || again != b {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, b, b.String(), again, err)
		}
	})
}

package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestDurationDecode(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{`"30s"`, 30 * time.Second, ""},
		{`"1h30m"`, 90 * time.Minute, ""},
		{`"250ms"`, 250 * time.Millisecond, ""},
		{`"-5s"`, -5 * time.Second, ""},
		{`90`, 90 * time.Second, ""},
		{`1.5`, 1500 * time.Millisecond, ""},
		{`"ten"`, 0, `duration "ten"`},
		{`"5"`, 0, `duration "5"`},
		{`true`, 0, "want a string"},
		{`1e300`, 0, "out of range"},
	}
	for _, tt := range tests {
		var d Duration
		err := json.Unmarshal([]byte(tt.in), &d)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decode %s: error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || d.Std() != tt.want {
			t.Errorf("decode %s = %v, %v; want %v", tt.in, d, err, tt.want)
		}
	}
}

func TestDurationNullKeepsValue(t *testing.T) {
	d := Duration(time.Minute)
	if err := json.Unmarshal([]byte("null"), &d); err != nil || d.Std() != time.Minute {
		t.Fatalf("null changed the value to %v (err %v)", d, err)
	}
}

func TestDurationRoundTripYAML(t *testing.T) {
	type doc struct {
		Interval Duration `json:"interval"`
	}
	out, err := yaml.Marshal(doc{Interval: Duration(90 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "interval: 1m30s\n" {
		t.Fatalf("marshalled %q", out)
	}
	var back doc
	if err := yaml.UnmarshalStrict(out, &back); err != nil || back.Interval.Std() != 90*time.Second {
		t.Fatalf("round trip gave %v (err %v)", back.Interval, err)
	}
}

func TestFieldError(t *testing.T) {
	err := Invalid("restart.backoff_max", 5*time.Second, "must not be less than backoff_base (10s)")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "restart.backoff_max" {
		t.Fatalf("errors.As failed on %v", err)
	}
	want := `field "restart.backoff_max" = 5s: must not be less than backoff_base (10s)`
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
}

// FuzzDurationDecode checks that any input either fails with an error or
// decodes to a value that marshals and decodes back to itself.
func FuzzDurationDecode(f *testing.F) {
	for _, s := range []string{`"30s"`, `90`, `"1h2m3.5s"`, `null`, `"-0"`, `1e19`, `"9223372036854775807ns"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Duration
		if err := json.Unmarshal(in, &d); err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal %v: %v", d, err)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("%s decoded to %v, re-encoded %s, decoded %v (%v)", in, d, out, back, err)
		}
	})
}

func TestDurationSecondsAtInt64Limit(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte("9223372036.854775807"), &d); err == nil {
		t.Fatalf("2^63 ns decoded to %v instead of an out-of-range error", d.Std())
	}
	if err := json.Unmarshal([]byte("-9223372036.854775808"), &d); err != nil || d.Std() != time.Duration(-1<<63) {
		t.Fatalf("-2^63 ns: got %v, %v", d.Std(), err)
	}
}

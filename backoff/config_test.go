package backoff

import (
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestConfigFromYAML(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		want      Exponential
		wantField string
	}{
		{"daemon config values", "backoff_base: 10s\nbackoff_max: 60s\n",
			Exponential{Initial: 10 * time.Second, Max: 60 * time.Second}, ""},
		{"empty means defaults", "{}", Exponential{}, ""},
		{"numbers are seconds", "backoff_base: 2\nbackoff_max: 30\n",
			Exponential{Initial: 2 * time.Second, Max: 30 * time.Second}, ""},
		{"zero jitter means exact", "backoff_jitter: 0\n", Exponential{NoJitter: true}, ""},
		{"explicit jitter", "backoff_jitter: 0.2\nbackoff_multiplier: 1.5\n", Exponential{Jitter: 0.2, Multiplier: 1.5}, ""},
		{"max below base", "backoff_base: 10s\nbackoff_max: 5s\n", Exponential{}, "backoff_max"},
		{"negative base", "backoff_base: -1s\n", Exponential{}, "backoff_base"},
		{"multiplier below one", "backoff_multiplier: 0.5\n", Exponential{}, "backoff_multiplier"},
		{"jitter above one", "backoff_jitter: 2\n", Exponential{}, "backoff_jitter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			if err := yaml.UnmarshalStrict([]byte(tt.doc), &c); err != nil {
				t.Fatalf("decode: %v", err)
			}
			got, err := c.Policy()
			assertFieldError(t, err, tt.wantField)
			if err == nil && (got.Initial != tt.want.Initial || got.Max != tt.want.Max ||
				got.Multiplier != tt.want.Multiplier || got.Jitter != tt.want.Jitter || got.NoJitter != tt.want.NoJitter) {
				t.Errorf("Policy() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestConfigRejectsMalformedDuration(t *testing.T) {
	var c Config
	err := yaml.UnmarshalStrict([]byte("backoff_base: ten seconds\n"), &c)
	if err == nil {
		t.Fatal("malformed backoff_base decoded without error")
	}
	t.Log(err)
}

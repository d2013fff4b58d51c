// Package config holds the small value types that tend's packages share in
// their decodable configuration, so that a host can read its own YAML or JSON
// file straight into tend's structs.
//
// Every type here marshals to and from the form people write by hand: a
// Duration is "1m30s", never a count of nanoseconds. YAML works through
// sigs.k8s.io/yaml, which converts YAML to JSON first, so one set of json tags
// serves both formats; package config/decode reads a whole file strictly.
// This package itself imports no YAML parser, so the supervisor, which
// uses its types, adds none to a host's binary.
package config

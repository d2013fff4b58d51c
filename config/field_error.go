package config

import "fmt"

// FieldError reports a configuration value that cannot be used. Field is the
// name the user wrote (the JSON key, e.g. "restart.backoff_max", or the Go
// field name where the value did not come from a file) and Value is what was
// given. Callers match it with errors.As to point at the offending line.
type FieldError struct {
	Field  string // the key, e.g. "restart.backoff_max"
	Value  any    // what was given
	Reason string // why it cannot be used
}

// Error formats the error as `field "restart.backoff_max" = 1s: must not be less than backoff_base (10s)`.
func (e *FieldError) Error() string {
	return fmt.Sprintf("field %q = %v: %s", e.Field, e.Value, e.Reason)
}

// Invalid returns a *FieldError for field holding value.
func Invalid(field string, value any, reason string) error {
	return &FieldError{Field: field, Value: value, Reason: reason}
}

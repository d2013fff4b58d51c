package logs

import (
	"testing"

	"go.uber.org/goleak"
)

// No goleak ignore for lumberjack's mill goroutine: Close must end it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

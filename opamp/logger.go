package opamp

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
)

// opampLogger passes opamp-go's log lines to a logr.Logger: its debug
// lines at V(1), its errors as errors.
type opampLogger struct{ log logr.Logger }

func (l opampLogger) Debugf(_ context.Context, format string, v ...any) {
	l.log.V(1).Info(fmt.Sprintf(format, v...))
}

func (l opampLogger) Errorf(_ context.Context, format string, v ...any) {
	l.log.Error(fmt.Errorf(format, v...), "opamp client")
}

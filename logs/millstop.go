package logs

import (
	"reflect"
	"unsafe"

	"gopkg.in/natefinch/lumberjack.v2"
)

// stopMill ends lumberjack's mill goroutine, which lumberjack v2.2.1 starts
// on the first write and never stops (upstream issue #56, open since 2017):
// the goroutine ranges over the unexported channel millCh, and closing that
// channel is the only way out. It must be called after l.Close, which
// orders it after every write that may have created the channel, and only
// when nothing will call l.Write or l.Rotate again: lumberjack would then
// send on the closed channel. A compression under way finishes first.
//
// If a future lumberjack renames or retypes the field, stopMill does
// nothing and the goroutine stays, as it would without this repair; the
// package's leak test then fails and points here.
func stopMill(l *lumberjack.Logger) {
	field := reflect.ValueOf(l).Elem().FieldByName("millCh")
	if !field.IsValid() || field.Type() != reflect.TypeFor[chan bool]() {
		return
	}
	ch := (*chan bool)(unsafe.Pointer(field.UnsafeAddr()))
	if *ch != nil {
		close(*ch)
	}
}

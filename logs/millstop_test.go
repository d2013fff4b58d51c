package logs

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/natefinch/lumberjack.v2"
)

// stopMill reaches into lumberjack's unexported millCh. It is checked
// against this exact version: an upgrade must re-read lumberjack's mill
// (millstop.go says what stopMill relies on) and then move this pin.
func TestStopMillPinnedToLumberjackVersion(t *testing.T) {
	const pinned = "gopkg.in/natefinch/lumberjack.v2 v2.2.1"
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), pinned) {
		t.Fatalf("go.mod does not require %s, the version stopMill was checked against", pinned)
	}
	field, ok := reflect.TypeFor[lumberjack.Logger]().FieldByName("millCh")
	if !ok || field.Type != reflect.TypeFor[chan bool]() {
		t.Fatalf("lumberjack.Logger.millCh is %v (found %v), not chan bool: stopMill cannot end the mill", field.Type, ok)
	}
}

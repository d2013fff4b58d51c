package opamp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/open-telemetry/opamp-go/client/types"
	"github.com/tend-dev/tend/reload"
)

// InstanceUIDFile returns the instance UID kept in the file at path,
// creating the file with a new UUIDv7 (32 hex digits) the first time,
// so that a host is the same instance to the server across its restarts.
// A file that holds anything else is an error naming it.
func InstanceUIDFile(path string) (types.InstanceUid, error) {
	var id types.InstanceUid
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		u, err := uuid.NewV7()
		if err != nil {
			return id, err
		}
		id = types.InstanceUid(u)
		return id, reload.WriteFile(path, []byte(hex.EncodeToString(id[:])+"\n"), 0o640)
	}
	if err != nil {
		return id, err
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != len(id) {
		return id, fmt.Errorf("instance UID file %s: want 32 hex digits, found %q", path, strings.TrimSpace(string(b)))
	}
	copy(id[:], raw)
	return id, nil
}

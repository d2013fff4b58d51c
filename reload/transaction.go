package reload

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Transaction carries out one reconfiguration of an agent through its
// config file, and undoes it when any step fails.
type Transaction struct {
	// Path is the agent's config file.
	Path string
	// Perm is the mode of the file if it does not exist yet. Default 0640.
	Perm fs.FileMode
	// Validate checks the new content before anything is written
	// (optional): a filebeat test config, a schema, a parse.
	Validate func(data []byte) error
	// Apply makes the agent take the file's content (required): send it
	// SIGHUP, or restart it.
	Apply func(ctx context.Context) error
	// Verify confirms the agent works with it (optional): a health check
	// that must pass within a deadline.
	Verify func(ctx context.Context) error
}

// Outcome reports what a Transaction did.
type Outcome struct {
	// Stage is where it failed: "validate", "write", "apply" or "verify";
	// empty on success.
	Stage string
	// OldHash and NewHash are the SHA-256 of the previous (last good) and
	// the proposed content; OldHash is empty when there was no file.
	OldHash, NewHash string
	// RolledBack is true when the last good content was restored and
	// applied again.
	RolledBack bool
	// RollbackErr is why restoring or re-applying the last good content
	// failed, if it did: the agent may then be in an unknown state.
	RollbackErr error
}

// Run validates data, writes it atomically to Path, applies and verifies
// it. If apply or verify fails, it restores the last good content, applies
// that again, and returns an error naming the stage, the cause and both
// hashes. A validation failure writes nothing. The rollback happens even
// when ctx has ended (a caller that gave up, or a newer configuration
// that cancelled this one): its Apply gets ctx's values without its
// cancellation, since the new content is on disk and the agent must not
// be left with it.
func (t Transaction) Run(ctx context.Context, data []byte) (Outcome, error) {
	if t.Apply == nil {
		return Outcome{}, errors.New("reload: Transaction needs Apply")
	}
	perm := t.Perm
	if perm == 0 {
		perm = 0o640
	}
	out := Outcome{NewHash: hashOf(data)}
	old, err := os.ReadFile(t.Path)
	hadFile := err == nil
	switch {
	case hadFile:
		out.OldHash = hashOf(old)
	case !errors.Is(err, fs.ErrNotExist):
		out.Stage = "write"
		return out, fmt.Errorf("config %s: read last good content: %w", t.Path, err)
	}
	fail := func(stage string, cause error) (Outcome, error) {
		out.Stage = stage
		return out, fmt.Errorf("config %s: %s failed (new %.12s, last good %.12s): %w", t.Path, stage, out.NewHash, out.OldHash, cause)
	}
	if t.Validate != nil {
		if err := t.Validate(data); err != nil {
			return fail("validate", err)
		}
	}
	if err := WriteFile(t.Path, data, perm); err != nil {
		return fail("write", err)
	}
	stage, cause := "apply", t.Apply(ctx)
	if cause == nil && t.Verify != nil {
		stage, cause = "verify", t.Verify(ctx)
	}
	if cause == nil {
		return out, nil
	}
	out.RolledBack = true
	out.RollbackErr = t.rollback(context.WithoutCancel(ctx), old, hadFile, perm)
	result, err := fail(stage, cause)
	if out.RollbackErr != nil {
		err = fmt.Errorf("%w; rollback failed too: %w", err, out.RollbackErr)
	}
	return result, err
}

// rollback puts the last good content back (or removes the file if there
// was none) and applies it.
func (t Transaction) rollback(ctx context.Context, old []byte, hadFile bool, perm fs.FileMode) error {
	var err error
	if hadFile {
		err = WriteFile(t.Path, old, perm)
	} else {
		err = os.Remove(t.Path)
	}
	if err != nil {
		return err
	}
	return t.Apply(ctx)
}

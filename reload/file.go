package reload

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tend-dev/tend/config"
	"github.com/tend-dev/tend/internal/atomicfile"
	"sigs.k8s.io/yaml"
)

// WriteFile replaces path with data atomically: a temporary file in the
// same directory, fsync, rename over path, fsync of the directory. A crash
// at any moment leaves the old content or the new, never a mix. An
// existing file keeps its mode and owner; a new one gets perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	if err := atomicfile.Write(path, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Format is a config document's syntax.
type Format int

// The formats a Document can have.
const (
	YAML Format = iota + 1
	JSON
)

// String returns "YAML" or "JSON".
func (f Format) String() string {
	switch f {
	case YAML:
		return "YAML"
	case JSON:
		return "JSON"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatOf tells the format from the file extension: .yaml and .yml are
// YAML, .json is JSON; anything else is an error naming the path.
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return YAML, nil
	case ".json":
		return JSON, nil
	}
	return 0, fmt.Errorf("config %s: unknown format (want .yaml, .yml or .json)", path)
}

// Document is an agent's config file held as a generic tree (maps, lists,
// strings, float64 numbers, booleans), the shape a merge patch applies to.
type Document struct {
	Path   string         // the file it was read from
	Format Format         // YAML or JSON, from the extension
	Data   map[string]any // the top-level mapping
}

// Parse decodes data in format f into a generic tree whose top level must
// be a mapping.
func Parse(data []byte, f Format) (map[string]any, error) {
	var tree map[string]any
	var err error
	switch f {
	case YAML:
		err = yaml.Unmarshal(data, &tree)
	case JSON:
		err = json.Unmarshal(data, &tree)
	default:
		err = fmt.Errorf("unknown format %v", f)
	}
	if err != nil {
		return nil, err
	}
	if tree == nil {
		tree = map[string]any{}
	}
	return tree, nil
}

// ReadDocument reads and parses the config file at path.
func ReadDocument(path string) (*Document, error) {
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tree, err := Parse(data, f)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &Document{Path: path, Format: f, Data: tree}, nil
}

// Merge lays patch over the document (config.Merge: maps merge, lists and
// scalars replace, null deletes).
func (d *Document) Merge(patch map[string]any) {
	d.Data = config.Merge(d.Data, patch).(map[string]any)
}

// Marshal renders the document in its own format.
func (d *Document) Marshal() ([]byte, error) {
	switch d.Format {
	case YAML:
		return yaml.Marshal(d.Data)
	case JSON:
		b, err := json.MarshalIndent(d.Data, "", "  ")
		return append(b, '\n'), err
	}
	return nil, fmt.Errorf("unknown format %v", d.Format)
}

// Update merges patch into the config file at path, checks the result with
// validate (if not nil) and writes it back atomically in the same format.
// A validation failure leaves the file untouched.
func Update(path string, patch map[string]any, validate func(data []byte) error) error {
	d, err := ReadDocument(path)
	if err != nil {
		return err
	}
	d.Merge(patch)
	data, err := d.Marshal()
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if validate != nil {
		if err := validate(data); err != nil {
			return fmt.Errorf("config %s: rejected: %w", path, err)
		}
	}
	return WriteFile(path, data, 0o640)
}

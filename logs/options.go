package logs

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/tend-dev/tend/config"
)

// Options configures a Rotator. Zero values mean the documented default.
type Options struct {
	// Path is the live log file. Required; its directory is created.
	Path string `json:"path"`
	// MaxSizeMB is the size in MiB at which the file rotates. Default 100.
	MaxSizeMB int `json:"max_size_mb,omitempty"`
	// MaxBackups is how many rotated files to keep; 0 keeps all (MaxAgeDays
	// still applies).
	MaxBackups int `json:"max_backups,omitempty"`
	// MaxAgeDays removes backups older than this many days, judged by the
	// time in their name; 0 keeps them regardless of age.
	MaxAgeDays int `json:"max_age_days,omitempty"`
	// Compress gzips rotated files.
	Compress bool `json:"compress,omitempty"`
	// LocalTime names backups in local time instead of UTC.
	LocalTime bool `json:"local_time,omitempty"`
	// FileMode is the mode of new log files. Default 0640.
	FileMode Mode `json:"file_mode,omitempty"`
	// DirMode is the mode of directories created for Path. Default 0750.
	DirMode Mode `json:"dir_mode,omitempty"`
	// RotateEvery rotates the file at this interval, if anything was written.
	RotateEvery config.Duration `json:"rotate_every,omitempty"`
	// RotateAt rotates at each wall-clock boundary: "hourly" or "daily"
	// (local midnight when LocalTime is set, else UTC), if anything was
	// written.
	RotateAt string `json:"rotate_at,omitempty"`
	// Prefix is what Streams put before every line.
	Prefix Prefix `json:"prefix,omitzero"`
	// PartialLineWait is how long a Stream keeps an unfinished line
	// waiting for its newline (an agent that died mid-line, a prompt)
	// before it writes it with one added. Default 1s.
	PartialLineWait config.Duration `json:"partial_line_wait,omitempty"`
	// Logger receives write errors (rate limited) and rotation failures.
	Logger logr.Logger `json:"-"`
}

// Prefix says what a Stream writes before each line: a timestamp, the
// stream's name, or both ("2026-11-29T05:00:00Z stderr: ...").
type Prefix struct {
	// Timestamp is a time.Format layout; empty writes no timestamp.
	Timestamp string `json:"timestamp,omitempty"`
	// Stream writes the stream's name and a colon.
	Stream bool `json:"stream,omitempty"`
}

// Mode is a file mode that reads and writes as an octal string, "0640".
type Mode fs.FileMode

// MarshalJSON writes the mode as an octal string.
func (m Mode) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprintf("%04o", uint32(m)))
}

// UnmarshalJSON reads an octal string ("0640", "640") or a number.
func (m *Mode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n uint32
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("file mode %s: want an octal string such as \"0640\"", b)
		}
		s = strconv.FormatUint(uint64(n), 10) // written as digits: read them as octal
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("file mode %q: want an octal permission such as \"0640\"", s)
	}
	*m = Mode(v)
	return nil
}

// Defaults of Options.
const (
	DefaultMaxSizeMB       = 100
	DefaultFileMode        = Mode(0o640)
	DefaultDirMode         = Mode(0o750)
	DefaultPartialLineWait = time.Second
)

// validate checks o and fills in defaults.
func (o *Options) validate() error {
	switch {
	case o.Path == "":
		return config.Invalid("path", `""`, "must name the log file")
	case o.MaxSizeMB < 0:
		return config.Invalid("max_size_mb", o.MaxSizeMB, "must not be negative")
	case o.MaxBackups < 0:
		return config.Invalid("max_backups", o.MaxBackups, "must not be negative")
	case o.MaxAgeDays < 0:
		return config.Invalid("max_age_days", o.MaxAgeDays, "must not be negative")
	case o.RotateEvery < 0:
		return config.Invalid("rotate_every", o.RotateEvery, "must not be negative")
	case o.RotateEvery > 0 && o.RotateEvery.Std() < time.Second:
		return config.Invalid("rotate_every", o.RotateEvery, "must be at least 1s")
	case o.RotateAt != "" && o.RotateAt != "hourly" && o.RotateAt != "daily":
		return config.Invalid("rotate_at", o.RotateAt, `must be "hourly" or "daily"`)
	case o.PartialLineWait < 0:
		return config.Invalid("partial_line_wait", o.PartialLineWait, "must not be negative")
	case o.FileMode&^0o777 != 0:
		return config.Invalid("file_mode", fmt.Sprintf("%04o", uint32(o.FileMode)), "must be a permission within 0777")
	}
	if o.MaxSizeMB == 0 {
		o.MaxSizeMB = DefaultMaxSizeMB
	}
	if o.PartialLineWait == 0 {
		o.PartialLineWait = config.Duration(DefaultPartialLineWait)
	}
	if o.FileMode == 0 {
		o.FileMode = DefaultFileMode
	}
	if o.DirMode == 0 {
		o.DirMode = DefaultDirMode
	}
	return nil
}

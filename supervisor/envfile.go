package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tend-dev/tend/config"
)

// defaultPath is the PATH a child gets when its environment has none,
// systemd's default for services: an agent that runs a helper by name
// (sh, logger, ip) finds it.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// readEnvFile reads path in systemd's EnvironmentFile= syntax; a leading
// "-" makes a missing file no error. Errors name env_file and the line.
func readEnvFile(path string) ([]string, error) {
	optional := strings.HasPrefix(path, "-")
	path = strings.TrimPrefix(path, "-")
	data, err := os.ReadFile(path)
	switch {
	case optional && errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, config.Invalid("env_file", path, describeStatError(err))
	}
	env, err := parseEnvFile(data)
	if err != nil {
		return nil, config.Invalid("env_file", path, err.Error())
	}
	return env, nil
}

// parseEnvFile parses KEY=VALUE lines: blank lines and lines starting with
// # or ; are skipped, a trailing backslash continues the line, a value in
// double quotes takes \" \\ \n escapes, one in single quotes is literal,
// an unquoted one is trimmed.
func parseEnvFile(data []byte) ([]string, error) {
	var env []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		for strings.HasSuffix(text, `\`) && sc.Scan() {
			line++
			text = strings.TrimSuffix(text, `\`) + sc.Text()
		}
		text = strings.TrimSpace(text)
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		key = strings.TrimSpace(key)
		if !ok || !validEnvKey(key) {
			return nil, fmt.Errorf("line %d: want KEY=VALUE, got %q", line, text)
		}
		v, err := unquoteEnvValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		env = append(env, key+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return env, nil
}

func validEnvKey(k string) bool {
	if k == "" || k[0] >= '0' && k[0] <= '9' {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func unquoteEnvValue(v string) (string, error) {
	switch {
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1], nil
	case len(v) >= 1 && v[0] == '"':
		if len(v) < 2 || v[len(v)-1] != '"' {
			return "", errors.New("unterminated double quote")
		}
		var b strings.Builder
		for i := 1; i < len(v)-1; i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v)-1 {
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(v[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		return b.String(), nil
	case strings.ContainsRune(v, 0):
		return "", errors.New("NUL in value")
	}
	return v, nil
}

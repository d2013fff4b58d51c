package supervisor

import (
	"fmt"

	"github.com/tend-dev/tend/config"
)

// Kind builds the default arguments of an agent type from its Spec, used
// when the Spec gives no Args. It returns an error naming the field it
// needs when the Spec lacks it.
type Kind func(Spec) ([]string, error)

// DefaultKinds returns the built-in agent types (a fresh map each call, for
// a host to extend):
//
//	filebeat:      -c <config_file> [-path.home <work_dir>]
//	telegraf:      -config <config_file>
//	node_exporter: --web.listen-address=:9100 --path.procfs=/proc --path.sysfs=/sys
//	custom:        no arguments
func DefaultKinds() map[string]Kind {
	return map[string]Kind{
		"filebeat": func(s Spec) ([]string, error) {
			if s.ConfigFile == "" {
				return nil, needsConfigFile("filebeat")
			}
			args := []string{"-c", s.ConfigFile}
			if s.Dir != "" {
				args = append(args, "-path.home", s.Dir)
			}
			return args, nil
		},
		"telegraf": func(s Spec) ([]string, error) {
			if s.ConfigFile == "" {
				return nil, needsConfigFile("telegraf")
			}
			return []string{"-config", s.ConfigFile}, nil
		},
		"node_exporter": func(Spec) ([]string, error) {
			return []string{"--web.listen-address=:9100", "--path.procfs=/proc", "--path.sysfs=/sys"}, nil
		},
		"custom": func(Spec) ([]string, error) { return nil, nil },
	}
}

func needsConfigFile(kind string) error {
	return config.Invalid("config_file", `""`, fmt.Sprintf("type %s needs a config file to build its arguments", kind))
}

// kindArgs returns the Spec's Args, or, when there are none, what its
// kind supplies.
func (s Spec) kindArgs(kinds map[string]Kind) ([]string, error) {
	if len(s.Args) > 0 {
		return append([]string(nil), s.Args...), nil
	}
	if s.Type == "" {
		return nil, nil
	}
	kind, ok := kinds[s.Type]
	if !ok {
		return nil, config.Invalid("type", s.Type, "unknown agent type")
	}
	return kind(s)
}

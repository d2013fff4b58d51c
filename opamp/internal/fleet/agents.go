package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/tend-dev/tend/supervisor"
)

// DecodeAgents reads the config format of the example hosts: a JSON list
// of agents in the daemon config format's keys (name, binary_path, args,
// start_seconds, restart ...), unknown keys refused.
func DecodeAgents(data []byte) ([]supervisor.Spec, error) {
	var specs []supervisor.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&specs); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	for _, s := range specs {
		if err := supervisor.ValidateName(s.Name); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

package policies

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// profileView is what policies see as input.profile for one profile: its
// name, and the config's parameters overlaid with the profile's, as a
// JSON value (for verdict keys) and as a Rego term.
type profileView struct {
	value map[string]any
	term  *ast.Term
}

// profileViews builds input.profile for every profile the config defines.
func profileViews(cfg *Config) (map[string]profileView, error) {
	out := make(map[string]profileView, len(cfg.Profiles.Definitions))
	for name, p := range cfg.Profiles.Definitions {
		// A JSON round trip gives the plain shapes Rego values and verdict
		// keys expect, and a copy no caller shares.
		b, err := json.Marshal(map[string]any{"name": name, "parameters": mergeParameters(cfg.Parameters, p.Parameters)})
		if err != nil {
			return nil, fmt.Errorf("profiles.definitions%s.parameters: %w", keyPath(name), err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("profiles.definitions%s.parameters: %w", keyPath(name), err)
		}
		val, err := ast.InterfaceToValue(v)
		if err != nil {
			return nil, fmt.Errorf("profiles.definitions%s.parameters: %w", keyPath(name), err)
		}
		out[name] = profileView{value: v, term: ast.NewTerm(val)}
	}
	return out, nil
}

// profileOf is input.profile for an input: the profile of the object's
// Namespace (a Namespace object is on its own profile), zero when the
// config defines no profiles or the Namespace is not known.
func (e *Engine) profileOf(in *Input) profileView {
	if len(e.profiles) == 0 {
		return profileView{}
	}
	return e.profiles[e.cfg.ProfileName(in.ProfileNamespace())]
}

package review

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
)

// ProfilePolicy is the id of the findings about a Namespace's profile: a
// move to another profile by someone the config's profiles.changers does
// not name is denied; an allowed one is recorded (action audit), so the
// decision log and the compliance report say who moved which namespace
// off the golden path, and when.
const ProfilePolicy = "namespace-profile"

// applyProfile sets each finding's action to the one its profile gives
// the policy (a disabled policy's findings are dropped) and says which
// profile judged. A policy that errors fails closed only where its
// action there is enforce.
func applyProfile(s *Set, in *policies.Input, d *policies.Decision) (string, *policies.Profile) {
	name, p := s.Engine.Config().ProfileOf(in.ProfileNamespace())
	if p == nil || len(p.Policies) == 0 {
		return name, p
	}
	kept := d.Findings[:0]
	for _, f := range d.Findings {
		if a, ok := p.PolicyAction(f.Policy); ok && f.Policy != ProfilePolicy {
			if a == policies.ActionDisabled {
				continue
			}
			f.Action = a
		}
		kept = append(kept, f)
	}
	d.Findings = kept
	errs := d.Errors[:0]
	for _, e := range d.Errors {
		if a, ok := p.PolicyAction(e.Policy); ok && a == policies.ActionDisabled {
			continue
		}
		errs = append(errs, e)
	}
	d.Errors = errs
	return name, p
}

// errorAction is what a policy that could not be evaluated does under a
// profile: the profile's action for it when it sets one, else the set's.
func errorAction(s *Set, p *policies.Profile, policy string) policies.Action {
	if a, ok := p.PolicyAction(policy); ok {
		return a
	}
	return s.Action(policy)
}

// profileChange judges an admission request that creates a Namespace or
// changes its profile label: the profile it ends on must be one the
// config defines, and a namespace may leave the default profile (or move
// between others) only at the hands of profiles.changers. Nothing is
// found when the profile stays the same. The audit (no operation) never
// judges it: a stored Namespace is not a change.
func profileChange(cfg *policies.Config, in *policies.Input) []policies.Finding {
	// namespaces/status and namespaces/finalize are judged too: the API
	// server keeps the labels such a write sends.
	if len(cfg.Profiles.Definitions) == 0 || in.Operation == "" || (in.SubResource != "" && in.SubResource != "status" && in.SubResource != "finalize") ||
		in.Kind.Group != "" || in.Kind.Kind != "Namespace" ||
		(in.Operation != "CREATE" && in.Operation != "UPDATE") {
		return nil
	}
	key := cfg.ProfileLabel()
	label, set := labelOf(in.Object, key)
	oldLabel, oldSet := labelOf(in.OldObject, key)
	if in.Operation == "UPDATE" && set == oldSet && label == oldLabel {
		return nil // the label is as it was: whatever it names stays
	}
	name := objectName(in.Object)
	path := "metadata.labels[" + strconv.Quote(key) + "]"
	if _, known := cfg.Profiles.Definitions[label]; set && !known {
		return []policies.Finding{{
			Policy: ProfilePolicy, Title: "Namespace profile", Action: policies.ActionEnforce, Severity: policies.SeverityHigh, Path: path,
			Message: fmt.Sprintf("namespace %s: %s %q names no profile (profiles: %s)", name, key, label,
				strings.Join(slices.Sorted(maps.Keys(cfg.Profiles.Definitions)), ", ")),
			Remediation: "set the label to one of the profiles, or remove it for the default profile",
			Details:     map[string]string{"namespace": name, "to": label},
		}}
	}
	from := cfg.Profiles.Default
	if in.Operation == "UPDATE" {
		from = cfg.ProfileName(in.OldObject)
	}
	to := cfg.ProfileName(in.Object)
	if from == to {
		return nil
	}
	user := ""
	if in.UserInfo != nil {
		user = in.UserInfo.Username
	}
	details := map[string]string{"namespace": name, "from": from, "to": to, "user": user}
	if !cfg.Profiles.Changers.Includes(in.UserInfo) {
		return []policies.Finding{{
			Policy: ProfilePolicy, Title: "Namespace profile", Action: policies.ActionEnforce, Severity: policies.SeverityHigh, Path: path,
			Message:     fmt.Sprintf("namespace %s: moving from profile %q to %q is for the platform team (profiles.changers); %s is not among them", name, from, to, orUnknown(user)),
			Remediation: "ask a user or group of profiles.changers to change the label",
			Details:     details,
		}}
	}
	return []policies.Finding{{
		Policy: ProfilePolicy, Title: "Namespace profile", Action: policies.ActionAudit, Severity: policies.SeverityInfo, Path: path,
		Message: fmt.Sprintf("namespace %s moved from profile %q to %q by %s", name, from, to, orUnknown(user)),
		Details: details,
	}}
}

func labelOf(obj map[string]any, key string) (string, bool) {
	meta, _ := obj["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	v, ok := labels[key].(string)
	return v, ok
}

func objectName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	n, _ := meta["name"].(string)
	return n
}

func orUnknown(user string) string {
	if user == "" {
		return "an unknown user"
	}
	return user
}

// ProfileProblems names, by profile, every entry of its policies (the
// config's definitions and the cluster's TollgateProfiles merged in) that
// matches no policy the set holds: a typo must not leave a policy at its
// old action unnoticed.
func (s *Set) ProfileProblems() map[string][]string {
	cfg := s.Engine.Config()
	if len(cfg.Profiles.Definitions) == 0 {
		return nil
	}
	ids := []string{ProfilePolicy}
	for _, m := range s.Policies() {
		ids = append(ids, m.ID)
	}
	out := map[string][]string{}
	for name, p := range cfg.Profiles.Definitions {
		if probs := p.UnknownPolicies("profile "+name, ids); len(probs) > 0 {
			out[name] = probs
		}
	}
	return out
}

package policies

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// DefaultProfileLabel is the Namespace label that selects a profile when
// the config names no other.
const DefaultProfileLabel = "tollgate.dev/path"

// Profiles are the paths a platform offers: a golden path it supports
// (enforced policies, every default injected, generated quotas) and paths
// where a team may do more and owns the consequences. A Namespace selects
// its profile with a label; a Namespace without the label is on the
// default profile. With no definitions, every namespace is judged as the
// config alone says.
type Profiles struct {
	// Label is the Namespace label whose value names the profile
	// (default DefaultProfileLabel).
	Label string `json:"label,omitempty"`
	// Default is the profile of a Namespace without the label, and of one
	// whose label names no profile.
	Default string `json:"default,omitempty"`
	// Changers may set or change a Namespace's profile label to another
	// profile than the default: moving a namespace off the golden path is
	// a governed change, judged at admission and kept in the decision log.
	Changers Subjects `json:"changers"`
	// Definitions by name, as the label's value names them. Cluster
	// TollgateProfile objects add to them (and replace one of the same
	// name).
	Definitions map[string]Profile `json:"definitions,omitempty"`
}

// Subjects name users and groups as the API server authenticates them.
type Subjects struct {
	Users  []string `json:"users,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// Includes reports whether a request's user is one of the subjects.
func (s Subjects) Includes(u *UserInfo) bool {
	if u == nil {
		return false
	}
	if slices.Contains(s.Users, u.Username) {
		return true
	}
	for _, g := range u.Groups {
		if slices.Contains(s.Groups, g) {
			return true
		}
	}
	return false
}

// Profile is one path: which policies apply in its namespaces and with
// which action, which defaults are injected there, which namespace
// defaults are generated, and which budget applies.
type Profile struct {
	// Description says what the path is, for people and reports.
	Description string `json:"description,omitempty"`
	// Notice is said with every warning in the profile's namespaces: what
	// a team on this path owns ("not on the golden path: no platform
	// backups or monitoring").
	Notice string `json:"notice,omitempty"`
	// Policies sets the action of policies by id or glob ("pss-*", "*",
	// "K8sRequiredLabels/*"; '*' matches any characters, '/' included):
	// enforce, warn, audit or disabled. An exact id wins over a glob, a
	// longer glob over a shorter one. Policies it does not name keep the
	// config's action.
	Policies map[string]Action `json:"policies,omitempty"`
	// SkipMutations turns defaults off in the profile's namespaces:
	// "ownership", "securityContext", "resources". A profile cannot turn on
	// a default the config turns off.
	SkipMutations []string `json:"skipMutations,omitempty"`
	// Parameters overlay the config's parameters for policies judging an
	// object in the profile's namespaces (input.profile.parameters).
	Parameters map[string]any `json:"parameters,omitempty"`
	// NamespaceDefaults are the objects generated in each of the
	// profile's namespaces and kept in sync.
	NamespaceDefaults NamespaceDefaults `json:"namespaceDefaults"`
	// Budget, when set, is the Budget generated in each of the profile's
	// namespaces.
	Budget *ProfileBudget `json:"budget,omitempty"`
}

// Mutation names a profile can skip.
const (
	MutationOwnership       = "ownership"
	MutationSecurityContext = "securityContext"
	MutationResources       = "resources"
)

// NamespaceDefaults are generated per namespace: a ResourceQuota, a
// LimitRange and a default-deny NetworkPolicy with allowances. Each is
// generated only when set.
type NamespaceDefaults struct {
	ResourceQuota *ResourceQuotaDefaults `json:"resourceQuota,omitempty"`
	LimitRange    *LimitRangeDefaults    `json:"limitRange,omitempty"`
	NetworkPolicy *NetworkPolicyDefaults `json:"networkPolicy,omitempty"`
}

// ResourceQuotaDefaults is a ResourceQuota's spec.hard: resource names
// as the API server takes them ("requests.cpu", "limits.memory",
// "requests.nvidia.com/gpu", "requests.storage", "pods",
// "count/deployments.apps") and quantities.
type ResourceQuotaDefaults struct {
	Hard map[string]string `json:"hard"`
}

// LimitRangeDefaults is a LimitRange's one Container item: defaults for
// containers that set none, and bounds.
type LimitRangeDefaults struct {
	Default        map[string]string `json:"default,omitempty"`
	DefaultRequest map[string]string `json:"defaultRequest,omitempty"`
	Max            map[string]string `json:"max,omitempty"`
	Min            map[string]string `json:"min,omitempty"`
}

// NetworkPolicyDefaults is a NetworkPolicy that denies all ingress and
// egress of every pod in the namespace except what it allows.
type NetworkPolicyDefaults struct {
	// AllowSameNamespace allows traffic between the namespace's pods.
	AllowSameNamespace bool `json:"allowSameNamespace,omitempty"`
	// AllowDNS allows egress to port 53 (UDP and TCP) in kube-system.
	AllowDNS bool `json:"allowDNS,omitempty"`
	// IngressFromNamespaces allows ingress from namespaces whose labels
	// match each entry (an ingress controller's, monitoring's).
	IngressFromNamespaces []map[string]string `json:"ingressFromNamespaces,omitempty"`
	// EgressCIDRs allows egress to these networks.
	EgressCIDRs []string `json:"egressCIDRs,omitempty"`
}

// ProfileBudget is the Budget generated in each namespace of a profile:
// the fields of a Budget's spec, scoped to the namespace.
type ProfileBudget struct {
	Amount     string   `json:"amount"`
	Currency   string   `json:"currency,omitempty"`
	Period     string   `json:"period,omitempty"`
	Thresholds []int32  `json:"thresholds,omitempty"`
	Channels   []string `json:"channels,omitempty"`
	Action     string   `json:"action,omitempty"`
}

// ProfileLabel is the label key that selects profiles.
func (c *Config) ProfileLabel() string {
	if c.Profiles.Label != "" {
		return c.Profiles.Label
	}
	return DefaultProfileLabel
}

// ProfileName is the profile a Namespace object is on: its label's value
// when that names a profile, else the default; "" when the config defines
// no profiles (or the object is not known: cluster-scoped or offline).
func (c *Config) ProfileName(namespace map[string]any) string {
	if len(c.Profiles.Definitions) == 0 || namespace == nil {
		return ""
	}
	if v, ok := namespaceLabel(namespace, c.ProfileLabel()); ok {
		if _, known := c.Profiles.Definitions[v]; known {
			return v
		}
	}
	return c.Profiles.Default
}

// ProfileNamespace is the Namespace object whose profile judges the input:
// the object's Namespace, or a Namespace object's own.
func (in *Input) ProfileNamespace() map[string]any {
	if in.Kind.Group == "" && in.Kind.Kind == "Namespace" && in.Object != nil {
		return in.Object
	}
	return in.Namespace
}

// ProfileOf is the profile of a Namespace object, with its name; nil when
// ProfileName is "".
func (c *Config) ProfileOf(namespace map[string]any) (string, *Profile) {
	name := c.ProfileName(namespace)
	if name == "" {
		return "", nil
	}
	p, ok := c.Profiles.Definitions[name]
	if !ok {
		return "", nil
	}
	return name, &p
}

func namespaceLabel(ns map[string]any, key string) (string, bool) {
	meta, _ := ns["metadata"].(map[string]any)
	labels, _ := meta["labels"].(map[string]any)
	v, ok := labels[key].(string)
	return v, ok
}

// PolicyAction is the action the profile sets for a policy id, and
// whether it sets one: an exact id first, then the longest matching glob.
func (p *Profile) PolicyAction(id string) (Action, bool) {
	if p == nil {
		return "", false
	}
	if a, ok := p.Policies[id]; ok {
		return a, true
	}
	best, found := "", false
	for pat := range p.Policies {
		if globMatch(pat, id) && (!found || len(pat) > len(best) || (len(pat) == len(best) && pat < best)) {
			best, found = pat, true
		}
	}
	if !found {
		return "", false
	}
	return p.Policies[best], true
}

// globMatch matches a policy id against a profile's key: '*' stands for
// any run of characters ('/' included: Gatekeeper and Kyverno ids are
// "Kind/name"), '?' for one; anything else stands for itself. It runs for
// every finding under a profile, so it allocates nothing.
func globMatch(pat, id string) bool {
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(id) {
		switch {
		case p < len(pat) && (pat[p] == '?' || pat[p] == id[s]) && pat[p] != '*':
			p++
			s++
		case p < len(pat) && pat[p] == '*':
			star, mark = p, s
			p++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		p++
	}
	return p == len(pat)
}

// Skips reports whether the profile turns a default off.
func (p *Profile) Skips(mutation string) bool {
	return p != nil && slices.Contains(p.SkipMutations, mutation)
}

// WithProfiles is a copy of the config with more profile definitions
// (cluster TollgateProfiles), each replacing one of the same name. The
// caller has validated each with ValidateProfile.
func (c *Config) WithProfiles(extra map[string]Profile) *Config {
	if len(extra) == 0 {
		return c
	}
	out := *c
	out.Profiles.Definitions = maps.Clone(c.Profiles.Definitions)
	if out.Profiles.Definitions == nil {
		out.Profiles.Definitions = map[string]Profile{}
	}
	maps.Copy(out.Profiles.Definitions, extra)
	return &out
}

// UnknownPolicies names the entries of a profile's policies that match no
// policy id of ids: an exact id that does not exist, or a glob that
// matches none, each as "field: problem", so a typo cannot leave a policy
// at its old action unnoticed.
func (p *Profile) UnknownPolicies(field string, ids []string) []string {
	var out []string
	for _, pat := range slices.Sorted(maps.Keys(p.Policies)) {
		if slices.ContainsFunc(ids, func(id string) bool { return globMatch(pat, id) }) {
			continue
		}
		what := "no policy has this id"
		if strings.ContainsAny(pat, "*?") {
			what = "this glob matches no policy"
		}
		out = append(out, fmt.Sprintf("%s.policies%s: %s", field, keyPath(pat), what))
	}
	return out
}

var profileNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$`)

// validateProfiles checks the profiles section, naming each field.
func (ps *Profiles) validate() []error {
	var errs []error
	if ps.Label != "" && (!labelKeyRE.MatchString(ps.Label) || len(ps.Label) > 316) {
		errs = append(errs, fmt.Errorf("profiles.label: %q is not a valid label key", ps.Label))
	}
	if len(ps.Definitions) > 0 {
		if ps.Default == "" {
			errs = append(errs, errors.New("profiles.default: required when profiles are defined (the profile of a namespace without the label)"))
		} else if _, ok := ps.Definitions[ps.Default]; !ok {
			errs = append(errs, fmt.Errorf("profiles.default: %q is not among profiles.definitions", ps.Default))
		}
	} else if ps.Default != "" {
		errs = append(errs, fmt.Errorf("profiles.default: %q is not among profiles.definitions (there are none)", ps.Default))
	}
	for _, name := range slices.Sorted(maps.Keys(ps.Definitions)) {
		p := ps.Definitions[name]
		errs = append(errs, ValidateProfile("profiles.definitions"+keyPath(name), name, &p)...)
	}
	return errs
}

// ValidateProfile checks one profile, naming each field under prefix:
// the name is a label value, actions, quantities, resource names and
// networks parse.
func ValidateProfile(prefix, name string, p *Profile) []error {
	var errs []error
	if !profileNameRE.MatchString(name) {
		errs = append(errs, fmt.Errorf("%s: %q is not a profile name (a label value of lower-case letters, digits, '-' and '.')", prefix, name))
	}
	for _, pat := range slices.Sorted(maps.Keys(p.Policies)) {
		if _, err := ParseAction(string(p.Policies[pat])); err != nil {
			errs = append(errs, fmt.Errorf("%s.policies%s: %w", prefix, keyPath(pat), err))
		}
	}
	for i, m := range p.SkipMutations {
		if m != MutationOwnership && m != MutationSecurityContext && m != MutationResources {
			errs = append(errs, fmt.Errorf("%s.skipMutations[%d]: %q is not a mutation (want ownership, securityContext or resources)", prefix, i, m))
		}
	}
	d := p.NamespaceDefaults
	if q := d.ResourceQuota; q != nil {
		if len(q.Hard) == 0 {
			errs = append(errs, fmt.Errorf("%s.namespaceDefaults.resourceQuota.hard: required", prefix))
		}
		errs = append(errs, quantities(prefix+".namespaceDefaults.resourceQuota.hard", q.Hard)...)
	}
	if l := d.LimitRange; l != nil {
		for _, part := range []struct {
			field string
			list  map[string]string
		}{{"default", l.Default}, {"defaultRequest", l.DefaultRequest}, {"max", l.Max}, {"min", l.Min}} {
			errs = append(errs, quantities(prefix+".namespaceDefaults.limitRange."+part.field, part.list)...)
		}
	}
	if n := d.NetworkPolicy; n != nil {
		for i, sel := range n.IngressFromNamespaces {
			if len(sel) == 0 {
				errs = append(errs, fmt.Errorf("%s.namespaceDefaults.networkPolicy.ingressFromNamespaces[%d]: empty (it would allow every namespace)", prefix, i))
			}
			for _, k := range slices.Sorted(maps.Keys(sel)) {
				if !labelKeyRE.MatchString(k) {
					errs = append(errs, fmt.Errorf("%s.namespaceDefaults.networkPolicy.ingressFromNamespaces[%d]: %q is not a label key", prefix, i, k))
				}
			}
		}
		for i, c := range n.EgressCIDRs {
			if _, err := netip.ParsePrefix(c); err != nil {
				errs = append(errs, fmt.Errorf("%s.namespaceDefaults.networkPolicy.egressCIDRs[%d]: %q is not a CIDR: %w", prefix, i, c, err))
			}
		}
	}
	if b := p.Budget; b != nil {
		if b.Amount == "" {
			errs = append(errs, fmt.Errorf("%s.budget.amount: required", prefix))
		} else if !budgetAmountRE.MatchString(b.Amount) {
			errs = append(errs, fmt.Errorf("%s.budget.amount: %q is not an amount (a decimal such as 5000 or 1250.50, as a Budget takes it)", prefix, b.Amount))
		}
		for i, t := range b.Thresholds {
			if t <= 0 {
				errs = append(errs, fmt.Errorf("%s.budget.thresholds[%d]: %d is not a percentage above 0", prefix, i, t))
			}
		}
		if b.Period != "" && b.Period != "monthly" && b.Period != "weekly" {
			errs = append(errs, fmt.Errorf("%s.budget.period: %q (want monthly or weekly)", prefix, b.Period))
		}
		if b.Action != "" && b.Action != "none" && b.Action != "warn" && b.Action != "deny" {
			errs = append(errs, fmt.Errorf("%s.budget.action: %q (want none, warn or deny)", prefix, b.Action))
		}
	}
	return errs
}

// budgetAmountRE is a Budget's spec.amount, as its CRD validates it.
var budgetAmountRE = regexp.MustCompile(`^[0-9]{1,12}(\.[0-9]{1,4})?$`)

// resourceNameRE is a ResourceQuota or LimitRange resource name: a
// qualified name with an optional prefix ("requests.", "count/").
var resourceNameRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9./]*[a-z0-9])?$`)

func quantities(field string, list map[string]string) []error {
	var errs []error
	for _, res := range slices.Sorted(maps.Keys(list)) {
		if !resourceNameRE.MatchString(res) || len(res) > 253 {
			errs = append(errs, fmt.Errorf("%s%s: %q is not a resource name", field, keyPath(res), res))
			continue
		}
		if _, err := resource.ParseQuantity(list[res]); err != nil {
			errs = append(errs, fmt.Errorf("%s%s: %q is not a quantity", field, keyPath(res), list[res]))
		}
	}
	return errs
}

// ParseProfile reads one profile as a TollgateProfile's spec holds it:
// unknown fields and invalid values are errors naming the field, under
// prefix (such as "TollgateProfile golden: spec").
func ParseProfile(prefix, name string, spec []byte) (*Profile, error) {
	var p Profile
	if err := yaml.UnmarshalStrict(spec, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	if errs := ValidateProfile(prefix, name, &p); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &p, nil
}

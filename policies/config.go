package policies

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// ConfigAPIVersion and ConfigKind identify a Tollgate config file.
const (
	ConfigAPIVersion = "tollgate.dev/v1alpha1"
	ConfigKind       = "Config"
	// ConfigObjectKind is the kind of the cluster object holding the config
	// in its spec.
	ConfigObjectKind = "TollgateConfig"
)

// ConfigSchema is the JSON Schema of the config file, for editors and CI
// linting of config repositories.
//
//go:embed config.schema.json
var ConfigSchema []byte

// Config is what a platform team tunes: the ownership label schema, policy
// action overrides, parameters the policies read, and exemptions. It reaches
// every policy as input.config (labels and parameters).
type Config struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`

	// Labels is the ownership label schema: which label keys carry team,
	// owner, cost-center and environment, and what values are valid.
	Labels LabelSchema `json:"labels"`

	// ExemptNamespaces are never judged by any policy.
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`

	// Policies overrides per policy id.
	Policies map[string]PolicyOverride `json:"policies,omitempty"`

	// Parameters are read by policies as input.config.parameters; keys
	// given here replace the defaults key by key (objects merge).
	Parameters map[string]any `json:"parameters,omitempty"`

	// PodControllers adds kinds that carry a pod template, such as Argo
	// Rollouts, so pod policies judge them too.
	PodControllers []PodController `json:"podControllers,omitempty"`
	// PodSecurity says which version of the Pod Security Standards the
	// library's pss-* policies judge by.
	PodSecurity PodSecurity `json:"podSecurity"`
	// Mutations are the defaults the mutating webhook injects.
	Mutations Mutations `json:"mutations"`
	// Exceptions says where PolicyException objects are honoured.
	Exceptions ExceptionSettings `json:"exceptions"`
	// Gatekeeper configures the Gatekeeper templates and constraints read
	// from the cluster.
	Gatekeeper GatekeeperConfig `json:"gatekeeper"`
	// Profiles are the paths namespaces choose with a label (golden,
	// innovation): per path, the policies' actions, the defaults injected
	// and the namespace defaults generated.
	Profiles Profiles `json:"profiles"`
	// GovernedKinds are kinds beyond the workloads (Crossplane claims and
	// composite resources) that get the ownership labels, are judged by
	// the ownership policies and are priced from their fields.
	GovernedKinds []GovernedKind `json:"governedKinds,omitempty"`
	// Deployments says how admitted workload changes are counted as
	// deployments: where the commit time of a change is read from.
	Deployments DeploymentSettings `json:"deployments"`
}

// CommitTimeAnnotation is the annotation a CI pipeline sets on a workload
// (or its pod template) to the RFC 3339 time of the commit it deploys, so
// that the lead time from commit to admission is measured. Neither Argo CD
// nor Flux records a commit time on the objects they apply, so the
// pipeline that renders the manifests sets it.
const CommitTimeAnnotation = "tollgate.dev/commit-time"

// DeploymentSettings configure how deployments are measured.
type DeploymentSettings struct {
	// CommitTimeAnnotations are annotation keys read, after
	// CommitTimeAnnotation, for the RFC 3339 commit time of a change: for
	// a pipeline that already writes one under its own key.
	CommitTimeAnnotations []string `json:"commitTimeAnnotations,omitempty"`
}

// GatekeeperConfig configures Gatekeeper templates and constraints.
type GatekeeperConfig struct {
	// Sync names the kinds kept in data.inventory, which referential
	// templates read (Gatekeeper's Config spec.sync.syncOnly). Tollgate
	// must be allowed to list and watch them.
	Sync []GroupVersionKind `json:"sync,omitempty"`
}

// Mutations configures what the mutating webhook adds to workloads.
type Mutations struct {
	Ownership       OwnershipMutation       `json:"ownership"`
	SecurityContext SecurityContextMutation `json:"securityContext"`
	Resources       ResourcesMutation       `json:"resources"`
}

// OwnershipMutation copies the Namespace's ownership labels onto workloads,
// their pod templates and PersistentVolumeClaims, so cost and incidents can
// be traced to a team without every manifest repeating them.
type OwnershipMutation struct {
	Enabled bool `json:"enabled"`
	// Overwrite replaces a workload's value that differs from the
	// Namespace's. By default the workload's own value is kept and judged:
	// for the team and cost-center keys the Namespace sets, the
	// ownership-of-record policy reports the difference, and spend and
	// Budget scopes follow the Namespace's value whatever the workload
	// says; labels the Namespace does not set (and owner and environment)
	// stay the workload's own.
	Overwrite bool `json:"overwrite"`
}

// SecurityContextDefaults is the hardened security context defaulted onto
// pods and every container.
type SecurityContextDefaults struct {
	Enabled bool `json:"enabled"`
	// Overwrite replaces values the user set; by default they are kept (and
	// the policies judge them).
	Overwrite                   bool   `json:"overwrite"`
	RunAsNonRoot                bool   `json:"runAsNonRoot"`
	SeccompProfile              string `json:"seccompProfile"`
	DisallowPrivilegeEscalation bool   `json:"disallowPrivilegeEscalation"`
	DropAllCapabilities         bool   `json:"dropAllCapabilities"`
}

// SecurityContextMutation is the default security context plus overrides
// for some namespaces.
type SecurityContextMutation struct {
	SecurityContextDefaults
	// Namespaces overrides the defaults in the namespaces its entries name
	// (names or globs); the first entry that matches wins.
	Namespaces []SecurityContextOverride `json:"namespaces,omitempty"`
}

// SecurityContextOverride changes some security-context defaults in some
// namespaces; fields left out keep the cluster-wide value.
type SecurityContextOverride struct {
	Namespaces                  []string `json:"namespaces"`
	Enabled                     *bool    `json:"enabled,omitempty"`
	Overwrite                   *bool    `json:"overwrite,omitempty"`
	RunAsNonRoot                *bool    `json:"runAsNonRoot,omitempty"`
	SeccompProfile              *string  `json:"seccompProfile,omitempty"`
	DisallowPrivilegeEscalation *bool    `json:"disallowPrivilegeEscalation,omitempty"`
	DropAllCapabilities         *bool    `json:"dropAllCapabilities,omitempty"`
}

// forNamespace resolves the defaults that apply in one namespace.
func (m SecurityContextMutation) forNamespace(ns string) SecurityContextDefaults {
	d := m.SecurityContextDefaults
	for _, o := range m.Namespaces {
		if matchNamespace(o.Namespaces, ns) {
			return o.Apply(d)
		}
	}
	return d
}

// Apply returns d with the fields the override sets replaced: what the
// mutation does in the override's namespaces, and what the mutating
// webhook's match condition must expect there.
func (o SecurityContextOverride) Apply(d SecurityContextDefaults) SecurityContextDefaults {
	set := func(dst *bool, src *bool) {
		if src != nil {
			*dst = *src
		}
	}
	set(&d.Enabled, o.Enabled)
	set(&d.Overwrite, o.Overwrite)
	set(&d.RunAsNonRoot, o.RunAsNonRoot)
	set(&d.DisallowPrivilegeEscalation, o.DisallowPrivilegeEscalation)
	set(&d.DropAllCapabilities, o.DropAllCapabilities)
	if o.SeccompProfile != nil {
		d.SeccompProfile = *o.SeccompProfile
	}
	return d
}

// ResourcesMutation defaults requests and limits where a container has
// none, so every workload has a cost and a scheduling footprint.
type ResourcesMutation struct {
	Enabled  bool              `json:"enabled"`
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// ExceptionSettings designates the namespaces whose PolicyException objects
// count. Anyone who can create objects there can waive a policy, so by
// default there are none.
type ExceptionSettings struct {
	Namespaces []string `json:"namespaces,omitempty"`
}

// LabelSchema names the ownership labels.
type LabelSchema struct {
	Team        LabelRule `json:"team"`
	Owner       LabelRule `json:"owner"`
	CostCenter  LabelRule `json:"costCenter"`
	Environment LabelRule `json:"environment"`
}

// LabelRule is one ownership label: its key and what values are valid.
type LabelRule struct {
	// Key is the label key, e.g. "team" or "example.com/team".
	Key string `json:"key"`
	// Required makes the label mandatory on workloads and namespaces.
	Required bool `json:"required"`
	// Pattern is an RE2 regexp the value must match; empty means any valid
	// label value.
	Pattern string `json:"pattern"`
	// Allowed lists the only valid values; empty means any.
	Allowed []string `json:"allowed,omitempty"`
}

// PolicyOverride changes one policy's behaviour.
type PolicyOverride struct {
	// Action replaces the policy's default action.
	Action Action `json:"action,omitempty"`
	// ExemptNamespaces are namespaces (names or globs) the policy skips.
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`
	// Namespaces, when set, limits the policy to these namespaces (names or
	// globs); cluster-scoped objects are then out of its reach.
	Namespaces []string `json:"namespaces,omitempty"`
	// Kinds, when set, limits the policy to these kinds ("Kind" or
	// "group/Kind").
	Kinds []string `json:"kinds,omitempty"`
}

// PodSecurity configures the Pod Security Standards policies.
type PodSecurity struct {
	// Version is the version of the standard judged by: "latest" (the
	// default; empty means the same) or "v1.<minor>", as Pod Security
	// admission's pod-security.kubernetes.io/enforce-version label takes
	// it. A Namespace that carries that label is judged by the label's
	// version.
	Version string `json:"version"`
}

// PodSecurityLatest is the Kubernetes release whose Pod Security Standards
// "latest" stands for: the newest release the library follows.
const PodSecurityLatest = "v1.36"

// podSecurityVersionRE is what Pod Security admission accepts besides
// "latest" (k8s.io/pod-security-admission/api.ParseVersion).
var podSecurityVersionRE = regexp.MustCompile(`^v1\.(0|[1-9][0-9]*)$`)

// PodController tells the engine where a kind keeps its pod template.
type PodController struct {
	Group string `json:"group"`
	Kind  string `json:"kind"`
	// Template is the dotted path of the pod template, e.g. spec.template.
	Template string `json:"template"`
}

// DefaultConfig is the configuration used when no file is given.
func DefaultConfig() *Config {
	return &Config{
		APIVersion: ConfigAPIVersion,
		Kind:       ConfigKind,
		Labels: LabelSchema{
			Team:        LabelRule{Key: "team", Required: true},
			Owner:       LabelRule{Key: "owner", Required: true},
			CostCenter:  LabelRule{Key: "cost-center", Required: true},
			Environment: LabelRule{Key: "environment"},
		},
		ExemptNamespaces: []string{"kube-system", "kube-public", "kube-node-lease"},
		Parameters:       defaultParameters(),
		PodSecurity:      PodSecurity{Version: "latest"},
		Mutations: Mutations{
			Ownership: OwnershipMutation{Enabled: true},
			SecurityContext: SecurityContextMutation{SecurityContextDefaults: SecurityContextDefaults{
				Enabled:                     true,
				RunAsNonRoot:                true,
				SeccompProfile:              "RuntimeDefault",
				DisallowPrivilegeEscalation: true,
				DropAllCapabilities:         true,
			}},
			Resources: ResourcesMutation{
				Enabled:  true,
				Requests: map[string]string{"cpu": "100m", "memory": "128Mi"},
				Limits:   map[string]string{"memory": "256Mi"},
			},
		},
	}
}

func defaultParameters() map[string]any {
	return map[string]any{
		"ownership": map[string]any{"inheritFromNamespace": true},
		"images": map[string]any{
			"allowedRegistries":  []any{},
			"allowLatest":        false,
			"requireTagOrDigest": true,
		},
		"resources": map[string]any{
			"requireRequests": []any{"cpu", "memory"},
			"requireLimits":   []any{"memory"},
			"container":       map[string]any{"cpu": "8", "memory": "32Gi"},
			"pod":             map[string]any{"cpu": "16", "memory": "64Gi"},
		},
		"naming": map[string]any{"patterns": map[string]any{}},
	}
}

// maxConfigBytes bounds a config file; real ones are a few KiB.
const maxConfigBytes = 4 << 20

// LoadConfig reads a config file; the defaults fill whatever it leaves out.
func LoadConfig(path string) (*Config, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if st.Size() > maxConfigBytes {
		return nil, fmt.Errorf("reading config %s: %d bytes is over the %d byte limit", path, st.Size(), maxConfigBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a config document (YAML or JSON) over the defaults and
// validates it. Unknown fields are errors, so a typo never silently turns a
// setting off.
func ParseConfig(data []byte) (*Config, error) {
	doc, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parsing: %w", YAMLError(data, err))
	}
	doc, err = configSpec(doc)
	if err != nil {
		return nil, err
	}
	if err := validateSchema(doc); err != nil {
		return nil, err
	}
	var file configFile
	if err := yaml.UnmarshalStrict(doc, &file); err != nil {
		return nil, fmt.Errorf("parsing: %w", err)
	}
	cfg := DefaultConfig()
	if file.APIVersion != "" && file.APIVersion != ConfigAPIVersion {
		return nil, fmt.Errorf("apiVersion: got %q, want %q", file.APIVersion, ConfigAPIVersion)
	}
	if file.Kind != "" && file.Kind != ConfigKind {
		return nil, fmt.Errorf("kind: got %q, want %q", file.Kind, ConfigKind)
	}
	// Labels: each field given in the file replaces the default's.
	for _, p := range []struct {
		dst *LabelRule
		src *labelRuleFile
	}{
		{&cfg.Labels.Team, file.Labels.Team},
		{&cfg.Labels.Owner, file.Labels.Owner},
		{&cfg.Labels.CostCenter, file.Labels.CostCenter},
		{&cfg.Labels.Environment, file.Labels.Environment},
	} {
		if p.src == nil {
			continue
		}
		if p.src.Key != "" {
			p.dst.Key = p.src.Key
		}
		if p.src.Required != nil {
			p.dst.Required = *p.src.Required
		}
		if p.src.Pattern != nil {
			p.dst.Pattern = *p.src.Pattern
		}
		if p.src.Allowed != nil {
			p.dst.Allowed = p.src.Allowed
		}
	}
	if file.ExemptNamespaces != nil {
		cfg.ExemptNamespaces = file.ExemptNamespaces
	}
	cfg.Policies = file.Policies
	cfg.PodControllers = file.PodControllers
	cfg.GovernedKinds = file.GovernedKinds
	cfg.Parameters = mergeParameters(cfg.Parameters, file.Parameters)
	if len(file.Mutations) > 0 && string(file.Mutations) != "null" {
		// Decoding over the defaults keeps every field the file leaves out.
		if err := json.Unmarshal(file.Mutations, &cfg.Mutations); err != nil {
			return nil, fmt.Errorf("mutations: %w", err)
		}
	}
	if file.Exceptions != nil {
		cfg.Exceptions = *file.Exceptions
	}
	if file.PodSecurity != nil && file.PodSecurity.Version != "" {
		cfg.PodSecurity.Version = file.PodSecurity.Version
	}
	if file.Gatekeeper != nil {
		cfg.Gatekeeper = *file.Gatekeeper
	}
	if file.Profiles != nil {
		cfg.Profiles = *file.Profiles
	}
	if file.Deployments != nil {
		cfg.Deployments = *file.Deployments
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// configSpec accepts the config either as a plain document or as the
// TollgateConfig cluster object (apiVersion, kind, metadata, spec), so the
// file `tollgate check --config` reads can be applied to the cluster as is.
func configSpec(doc []byte) ([]byte, error) {
	var head struct {
		Kind string          `json:"kind"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal(doc, &head); err != nil || head.Kind != ConfigObjectKind {
		return doc, nil //nolint:nilerr // not the object form: the schema reports what is wrong
	}
	if len(head.Spec) == 0 || string(head.Spec) == "null" {
		return nil, fmt.Errorf("spec: required in a %s object", ConfigObjectKind)
	}
	var spec map[string]any
	if err := json.Unmarshal(head.Spec, &spec); err != nil {
		return nil, fmt.Errorf("spec: want an object: %w", err)
	}
	spec["apiVersion"] = ConfigAPIVersion
	spec["kind"] = ConfigKind
	return json.Marshal(spec)
}

// configFile is the file's shape: pointers tell "not given" from "false".
type configFile struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Labels     struct {
		Team        *labelRuleFile `json:"team"`
		Owner       *labelRuleFile `json:"owner"`
		CostCenter  *labelRuleFile `json:"costCenter"`
		Environment *labelRuleFile `json:"environment"`
	} `json:"labels"`
	ExemptNamespaces []string                  `json:"exemptNamespaces"`
	Policies         map[string]PolicyOverride `json:"policies"`
	Parameters       map[string]any            `json:"parameters"`
	PodControllers   []PodController           `json:"podControllers"`
	Mutations        json.RawMessage           `json:"mutations"`
	Exceptions       *ExceptionSettings        `json:"exceptions"`
	PodSecurity      *PodSecurity              `json:"podSecurity"`
	Gatekeeper       *GatekeeperConfig         `json:"gatekeeper"`
	Profiles         *Profiles                 `json:"profiles"`
	Deployments      *DeploymentSettings       `json:"deployments"`
	GovernedKinds    []GovernedKind            `json:"governedKinds"`
}

type labelRuleFile struct {
	Key      string   `json:"key"`
	Required *bool    `json:"required"`
	Pattern  *string  `json:"pattern"`
	Allowed  []string `json:"allowed"`
}

// mergeParameters overlays src on dst: objects merge key by key, anything
// else replaces.
func mergeParameters(dst, src map[string]any) map[string]any {
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range src {
		dv, dok := out[k].(map[string]any)
		sv, sok := v.(map[string]any)
		if dok && sok {
			out[k] = mergeParameters(dv, sv)
			continue
		}
		out[k] = v
	}
	return out
}

var labelKeyRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$`)

// Validate checks the config and names the field of every problem.
func (c *Config) Validate() error {
	var errs []error
	for name, r := range map[string]LabelRule{
		"team": c.Labels.Team, "owner": c.Labels.Owner,
		"costCenter": c.Labels.CostCenter, "environment": c.Labels.Environment,
	} {
		if !labelKeyRE.MatchString(r.Key) || len(r.Key) > 316 {
			errs = append(errs, fmt.Errorf("labels.%s.key: %q is not a valid label key", name, r.Key))
		}
		if r.Pattern != "" {
			if _, err := regexp.Compile(r.Pattern); err != nil {
				errs = append(errs, fmt.Errorf("labels.%s.pattern: %w", name, err))
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.Policies)) {
		o := c.Policies[id]
		if o.Action != "" {
			if _, err := ParseAction(string(o.Action)); err != nil {
				errs = append(errs, fmt.Errorf("policies%s.action: %w", keyPath(id), err))
			}
		}
	}
	if v := c.PodSecurity.Version; v != "" && v != "latest" && !podSecurityVersionRE.MatchString(v) {
		errs = append(errs, fmt.Errorf(`podSecurity.version: %q is neither "latest" nor "v1.<minor>" (v1.0 to %s)`, v, PodSecurityLatest))
	}
	for i, pc := range c.PodControllers {
		if pc.Kind == "" {
			errs = append(errs, fmt.Errorf("podControllers[%d].kind: required", i))
		}
		if pc.Template == "" || strings.HasPrefix(pc.Template, ".") || strings.HasSuffix(pc.Template, ".") || strings.Contains(pc.Template, "..") {
			errs = append(errs, fmt.Errorf("podControllers[%d].template: %q is not a dotted path such as spec.template", i, pc.Template))
		}
	}
	for i, k := range c.Deployments.CommitTimeAnnotations {
		if !labelKeyRE.MatchString(k) || len(k) > 316 {
			errs = append(errs, fmt.Errorf("deployments.commitTimeAnnotations[%d]: %q is not a valid annotation key", i, k))
		}
	}
	for i, k := range c.Gatekeeper.Sync {
		if k.Version == "" {
			errs = append(errs, fmt.Errorf("gatekeeper.sync[%d].version: required", i))
		}
		if k.Kind == "" {
			errs = append(errs, fmt.Errorf("gatekeeper.sync[%d].kind: required", i))
		}
	}
	for _, part := range []struct {
		field string
		list  map[string]string
	}{{"requests", c.Mutations.Resources.Requests}, {"limits", c.Mutations.Resources.Limits}} {
		for _, res := range slices.Sorted(maps.Keys(part.list)) {
			if _, err := resource.ParseQuantity(part.list[res]); err != nil {
				errs = append(errs, fmt.Errorf("mutations.resources.%s.%s: %q is not a quantity", part.field, res, part.list[res]))
			}
		}
	}
	for i, o := range c.Mutations.SecurityContext.Namespaces {
		for j, pat := range o.Namespaces {
			if _, err := path.Match(pat, ""); err != nil {
				errs = append(errs, fmt.Errorf("mutations.securityContext.namespaces[%d].namespaces[%d]: %q is not a glob: %w", i, j, pat, err))
			}
		}
	}
	if naming, ok := c.Parameters["naming"].(map[string]any); ok {
		if pats, ok := naming["patterns"].(map[string]any); ok {
			for _, kind := range slices.Sorted(maps.Keys(pats)) {
				s, ok := pats[kind].(string)
				if !ok {
					errs = append(errs, fmt.Errorf("parameters.naming.patterns%s: want a string", keyPath(kind)))
					continue
				}
				if _, err := regexp.Compile(s); err != nil {
					errs = append(errs, fmt.Errorf("parameters.naming.patterns%s: %w", keyPath(kind), err))
				}
			}
		}
	}
	errs = append(errs, validateGovernedKinds(c.GovernedKinds)...)
	errs = append(errs, c.Profiles.validate()...)
	return errors.Join(errs...)
}

// keyPath is a map key as a step of a field path in a problem: ".key"
// when the key is a plain name, else `["key"]`, so that a key such as
// "000" or "a.b" cannot be misread as other steps.
func keyPath(key string) string {
	if plainKeyRE.MatchString(key) {
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// validateSchema checks a config document against ConfigSchema, so every
// problem is reported with the path of the field it is in.
func validateSchema(doc []byte) error {
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ConfigSchema))
	if err != nil {
		return fmt.Errorf("loading config schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("config.schema.json", schemaDoc); err != nil {
		return fmt.Errorf("loading config schema: %w", err)
	}
	schema, err := c.Compile("config.schema.json")
	if err != nil {
		return fmt.Errorf("loading config schema: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parsing: %w", err)
	}
	err = schema.Validate(inst)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	printer := message.NewPrinter(language.English)
	var errs []error
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			segs := make([]any, len(e.InstanceLocation))
			for i, tok := range e.InstanceLocation {
				segs[i] = tok
				if n, err := strconv.Atoi(tok); err == nil {
					segs[i] = n
				}
			}
			where := FormatPath(segs)
			if where == "" {
				where = "(top level)"
			}
			errs = append(errs, fmt.Errorf("%s: %s", where, e.ErrorKind.LocalizedString(printer)))
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return errors.Join(errs...)
}

// regoView is what policies see as input.config.
func (c *Config) regoView() (map[string]any, error) {
	// A JSON round trip gives the plain map/slice/number shapes the Rego
	// value conversion expects.
	labels := c.Labels
	podSecurity := c.PodSecurity
	if podSecurity.Version == "" {
		podSecurity.Version = "latest"
	}
	for _, r := range []*LabelRule{&labels.Team, &labels.Owner, &labels.CostCenter, &labels.Environment} {
		if r.Allowed == nil {
			r.Allowed = []string{}
		}
	}
	governed := c.GovernedKinds
	if governed == nil {
		governed = []GovernedKind{}
	}
	b, err := json.Marshal(struct {
		Labels        LabelSchema    `json:"labels"`
		Parameters    map[string]any `json:"parameters"`
		PodSecurity   PodSecurity    `json:"podSecurity"`
		GovernedKinds []GovernedKind `json:"governedKinds"`
	}{labels, c.Parameters, podSecurity, governed})
	if err != nil {
		return nil, fmt.Errorf("encoding config for policies: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("encoding config for policies: %w", err)
	}
	return out, nil
}

// action is the effective action of a policy after overrides.
func (c *Config) action(m *Metadata) Action {
	if o, ok := c.Policies[m.ID]; ok && o.Action != "" {
		return o.Action
	}
	return m.Action
}

// exempt reports whether a namespace is out of a policy's reach.
func (c *Config) exempt(policy, namespace string) bool {
	if namespace == "" {
		return false
	}
	if matchNamespace(c.ExemptNamespaces, namespace) {
		return true
	}
	return matchNamespace(c.Policies[policy].ExemptNamespaces, namespace)
}

// inScope reports whether a policy's config limits let it judge an object.
func (c *Config) inScope(policy, namespace string, gvk GroupVersionKind) bool {
	o, ok := c.Policies[policy]
	if !ok {
		return true
	}
	if len(o.Namespaces) > 0 && !matchNamespace(o.Namespaces, namespace) {
		return false
	}
	return len(o.Kinds) == 0 || matchKinds(o.Kinds, gvk)
}

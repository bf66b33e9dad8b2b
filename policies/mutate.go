package policies

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// InjectedAnnotation lists, as JSON, what Tollgate's mutations added to an
// object, so anyone reading it can tell the user's values from the platform's.
const InjectedAnnotation = "tollgate.dev/injected"

// PatchOperation is one RFC 6902 JSON patch operation.
type PatchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Mutation is what the mutating webhook would do to an object: the patch,
// and a summary of what it injects by area ("labels", "securityContext",
// "resources") for the annotation, the decision log and `tollgate check`.
type Mutation struct {
	Patch    []PatchOperation    `json:"patch"`
	Injected map[string][]string `json:"injected,omitempty"`
}

// Empty reports whether the mutation changes nothing.
func (m *Mutation) Empty() bool { return len(m.Patch) == 0 }

// Mutate computes the defaults the config asks for on one object: ownership
// labels copied from its Namespace, a hardened security context and
// resource requests and limits. It only adds what is missing (values the
// user set are kept unless the config says to overwrite), so a second call
// on the patched object returns an empty patch. in.Object is not modified.
// pins, from the image verifier, replace images with their verified
// digest-pinned references (listed by Images on the same input).
func (e *Engine) Mutate(in *Input, pins ...ImagePin) (*Mutation, error) {
	mut := &Mutation{Patch: []PatchOperation{}, Injected: map[string][]string{}}
	if in.Object == nil || in.Operation == "DELETE" {
		return mut, nil
	}
	if meta, _ := in.Object["metadata"].(map[string]any); meta != nil && meta["deletionTimestamp"] != nil {
		return mut, nil // finalizers are being removed: leave it be
	}
	p := &patcher{obj: deepCopyJSON(in.Object).(map[string]any), mut: mut}
	cfg := e.cfg.Mutations
	ns := in.ObjectNamespace()
	// A namespace's profile may turn defaults off there (never on).
	_, profile := e.cfg.ProfileOf(in.Namespace)
	tmpl, hasTemplate := e.pods.template(in.Kind)
	isPod := hasTemplate && len(tmpl) == 0
	if in.SubResource != "" {
		// Only pods/ephemeralcontainers reaches here judged as a pod; the
		// rest of the pod is immutable through it.
		if isPod && in.SubResource == "ephemeralcontainers" {
			sc := cfg.SecurityContext.forNamespace(ns)
			if sc.Enabled && !profile.Skips(MutationSecurityContext) {
				p.containerSecurity([]any{"spec"}, sc, []string{"ephemeralContainers"}, podIsWindows(p.obj))
			}
		}
		if err := p.pin(pins); err != nil {
			return nil, err
		}
		return p.finish(in.Object)
	}

	// Claims and the kinds the config governs carry no pod template: the
	// labels go on the object itself.
	owned := hasTemplate || in.Kind.Kind == "PersistentVolumeClaim" && in.Kind.Group == "" || e.cfg.GovernedKind(in.Kind) != nil
	if cfg.Ownership.Enabled && !profile.Skips(MutationOwnership) && owned {
		p.ownership(in, e.cfg.Labels, tmpl, cfg.Ownership.Overwrite)
	}
	// A pod's spec is immutable after creation: it is defaulted once, on
	// CREATE; templates are defaulted on every write so they stay hardened.
	if hasTemplate && (!isPod || in.Operation != "UPDATE") {
		if hasPath(p.obj, append(slices.Clone(tmpl), "spec")) {
			spec := make([]any, 0, len(tmpl)+1)
			for _, s := range tmpl {
				spec = append(spec, s)
			}
			spec = append(spec, "spec")
			if sc := cfg.SecurityContext.forNamespace(ns); sc.Enabled && !profile.Skips(MutationSecurityContext) {
				p.podSecurity(spec, sc)
			}
			if cfg.Resources.Enabled && !profile.Skips(MutationResources) {
				if err := p.resources(spec, cfg.Resources); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := p.pin(pins); err != nil {
		return nil, err
	}
	return p.finish(in.Object)
}

// patcher builds a patch against a working copy of the object, applying
// each operation to the copy as it goes so later steps see earlier ones.
type patcher struct {
	obj map[string]any
	mut *Mutation
}

func (p *patcher) note(area, what string) {
	if !slices.Contains(p.mut.Injected[area], what) {
		p.mut.Injected[area] = append(p.mut.Injected[area], what)
	}
}

// ensure sets the value at path when it is missing (and, with overwrite,
// when it differs), adding whatever parents are missing in one operation.
// It reports whether it changed anything.
func (p *patcher) ensure(segs []any, value any, overwrite bool) bool {
	var cur any = p.obj
	for i, s := range segs {
		last := i == len(segs)-1
		switch c := cur.(type) {
		case map[string]any:
			key, isKey := s.(string)
			if !isKey {
				return false // an object where an array should be: not ours to fix
			}
			next, ok := c[key]
			if !ok || next == nil {
				v := value
				for j := len(segs) - 1; j > i; j-- {
					v = map[string]any{segs[j].(string): v}
				}
				op := "add"
				if ok {
					op = "replace" // an explicit null
				}
				c[key] = deepCopyJSON(v)
				p.mut.Patch = append(p.mut.Patch, PatchOperation{Op: op, Path: pointer(segs[:i+1]), Value: v})
				return true
			}
			if last {
				if jsonEqual(next, value) || !overwrite {
					return false
				}
				c[key] = deepCopyJSON(value)
				p.mut.Patch = append(p.mut.Patch, PatchOperation{Op: "replace", Path: pointer(segs), Value: value})
				return true
			}
			cur = next
		case []any:
			idx, isIndex := s.(int)
			if !isIndex || idx >= len(c) {
				return false // an array where an object should be, or too short
			}
			cur = c[idx]
		default:
			return false // a scalar where an object should be: not ours to fix
		}
	}
	return false
}

func (p *patcher) get(segs []any) (any, bool) {
	var cur any = p.obj
	for _, s := range segs {
		switch c := cur.(type) {
		case map[string]any:
			key, isKey := s.(string)
			if !isKey {
				return nil, false
			}
			v, ok := c[key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, isIndex := s.(int)
			if !isIndex || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// ownership copies the namespace's ownership labels onto the object and
// every template on the way to its pod (a CronJob's job template too).
func (p *patcher) ownership(in *Input, schema LabelSchema, tmpl []string, overwrite bool) {
	nsLabels := map[string]any{}
	if in.Namespace != nil {
		if meta, _ := in.Namespace["metadata"].(map[string]any); meta != nil {
			nsLabels, _ = meta["labels"].(map[string]any)
		}
	}
	targets := [][]any{{"metadata"}}
	for i, s := range tmpl {
		if s == "template" || s == "jobTemplate" {
			t := make([]any, 0, i+2)
			for _, x := range tmpl[:i+1] {
				t = append(t, x)
			}
			targets = append(targets, append(t, "metadata"))
		}
	}
	for _, rule := range []LabelRule{schema.Team, schema.Owner, schema.CostCenter, schema.Environment} {
		v, ok := nsLabels[rule.Key].(string)
		if !ok || v == "" {
			continue
		}
		for _, t := range targets {
			if _, ok := p.get(t); !ok && len(t) > 1 {
				continue // no such template in this object
			}
			if p.ensure(append(slices.Clone(t), "labels", rule.Key), v, overwrite) {
				p.note("labels", rule.Key)
			}
		}
	}
}

// podSecurity defaults the pod-level security context and every
// container's.
func (p *patcher) podSecurity(spec []any, sc SecurityContextDefaults) {
	windows := podIsWindows(p.obj)
	ctx := append(slices.Clone(spec), "securityContext")
	injected := false
	if sc.RunAsNonRoot {
		uid, _ := p.get(append(slices.Clone(ctx), "runAsUser"))
		if !isZeroNumber(uid) { // runAsUser: 0 is the user's explicit choice; the policies judge it
			injected = p.ensure(append(slices.Clone(ctx), "runAsNonRoot"), true, sc.Overwrite) || injected
		}
	}
	if sc.SeccompProfile != "" && !windows && !hasLegacySeccompAnnotation(p.obj, spec) {
		injected = p.ensure(append(slices.Clone(ctx), "seccompProfile", "type"), sc.SeccompProfile, sc.Overwrite) || injected
	}
	if injected {
		p.note("securityContext", "pod")
	}
	p.containerSecurity(spec, sc, []string{"initContainers", "containers", "ephemeralContainers"}, windows)
}

// containerRef is one container of a pod spec and where it is.
type containerRef struct {
	list      string
	index     int
	container map[string]any
}

// containers yields each container object in the given lists of a pod
// spec.
func (p *patcher) containers(spec []any, lists []string) iter.Seq[containerRef] {
	return func(yield func(containerRef) bool) {
		for _, list := range lists {
			items, _ := p.get(append(slices.Clone(spec), list))
			arr, _ := items.([]any)
			for i, item := range arr {
				if c, _ := item.(map[string]any); c != nil && !yield(containerRef{list, i, c}) {
					return
				}
			}
		}
	}
}

func (p *patcher) containerSecurity(spec []any, sc SecurityContextDefaults, lists []string, windows bool) {
	for ref := range p.containers(spec, lists) {
		list, i, c := ref.list, ref.index, ref.container
		name, _ := c["name"].(string)
		ctx := append(slices.Clone(spec), list, i, "securityContext")
		injected := false
		if sc.DisallowPrivilegeEscalation && !windows && !privilegedOrSysAdmin(c) {
			injected = p.ensure(append(slices.Clone(ctx), "allowPrivilegeEscalation"), false, sc.Overwrite) || injected
		}
		if sc.DropAllCapabilities && !windows {
			drop, ok := p.get(append(slices.Clone(ctx), "capabilities", "drop"))
			switch {
			case !ok || drop == nil:
				injected = p.ensure(append(slices.Clone(ctx), "capabilities", "drop"), []any{"ALL"}, false) || injected
			case sc.Overwrite && !containsString(drop, "ALL"):
				injected = p.ensure(append(slices.Clone(ctx), "capabilities", "drop"), append(slices.Clone(drop.([]any)), "ALL"), true) || injected
			}
		}
		if injected {
			p.note("securityContext", list+"/"+name)
		}
	}
}

// resources fills in missing requests and limits of containers and init
// containers, keeping the result valid: a defaulted request never exceeds
// the container's limit, and a defaulted limit never falls below its
// request.
func (p *patcher) resources(spec []any, rc ResourcesMutation) error {
	for ref := range p.containers(spec, []string{"initContainers", "containers"}) {
		list, i, c := ref.list, ref.index, ref.container
		name, _ := c["name"].(string)
		base := append(slices.Clone(spec), list, i, "resources")
		injected := false
		// Requests first (never above the container's limit), then
		// limits (never below its request, defaulted or not).
		for _, side := range []struct {
			field, other string
			defaults     map[string]string
			atLeastOther bool
		}{{"requests", "limits", rc.Requests, false}, {"limits", "requests", rc.Limits, true}} {
			for _, res := range slices.Sorted(maps.Keys(side.defaults)) {
				want := side.defaults[res]
				if have, ok := p.get(append(slices.Clone(base), side.field, res)); ok && have != nil {
					continue
				}
				if other, ok := p.get(append(slices.Clone(base), side.other, res)); ok {
					lo, hi := any(want), other // a request default must not exceed the limit
					if side.atLeastOther {
						lo, hi = other, want // a limit default must not fall below the request
					}
					crosses, err := quantityLess(hi, lo)
					if err != nil {
						return fmt.Errorf("%s: %w", FormatPath(append(slices.Clone(base), side.other, res)), err)
					}
					if crosses {
						want = fmt.Sprint(other)
					}
				}
				injected = p.ensure(append(slices.Clone(base), side.field, res), want, false) || injected
			}
		}
		if injected {
			p.note("resources", list+"/"+name)
		}
	}
	return nil
}

// finish adds the annotation recording what was injected (merged with what
// earlier invocations recorded) and sorts the summary.
func (p *patcher) finish(original map[string]any) (*Mutation, error) {
	if len(p.mut.Patch) == 0 {
		p.mut.Injected = nil
		return p.mut, nil
	}
	merged := map[string][]string{}
	if meta, _ := original["metadata"].(map[string]any); meta != nil {
		if anns, _ := meta["annotations"].(map[string]any); anns != nil {
			if s, ok := anns[InjectedAnnotation].(string); ok {
				_ = json.Unmarshal([]byte(s), &merged) // a mangled value is replaced
			}
		}
	}
	for area, items := range p.mut.Injected {
		sort.Strings(items)
		for _, it := range items {
			if !slices.Contains(merged[area], it) {
				merged[area] = append(merged[area], it)
			}
		}
		sort.Strings(merged[area])
	}
	b, err := json.Marshal(merged)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", InjectedAnnotation, err)
	}
	p.ensure([]any{"metadata", "annotations", InjectedAnnotation}, string(b), true)
	return p.mut, nil
}

// pointer renders a JSON pointer (RFC 6901).
func pointer(segs []any) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch v := s.(type) {
		case int:
			b.WriteString(strconv.Itoa(v))
		case string:
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(v))
		}
	}
	return b.String()
}

func podIsWindows(obj map[string]any) bool {
	found := false
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok || found {
			return
		}
		if osField, ok := m["os"].(map[string]any); ok && osField["name"] == "windows" {
			found = true
			return
		}
		for _, k := range []string{"spec", "template", "jobTemplate"} {
			walk(m[k])
		}
	}
	walk(obj)
	return found
}

func hasLegacySeccompAnnotation(obj map[string]any, spec []any) bool {
	metaPath := append(slices.Clone(spec[:len(spec)-1]), "metadata", "annotations")
	var cur any = obj
	for _, s := range metaPath {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		cur = m[s.(string)]
	}
	anns, _ := cur.(map[string]any)
	for k := range anns {
		if strings.HasPrefix(k, "seccomp.security.alpha.kubernetes.io/") {
			return true
		}
	}
	return false
}

// privilegedOrSysAdmin: the API server rejects allowPrivilegeEscalation:
// false beside privileged: true or an added CAP_SYS_ADMIN, so those
// containers are left to the policies.
func privilegedOrSysAdmin(c map[string]any) bool {
	sc, _ := c["securityContext"].(map[string]any)
	if sc == nil {
		return false
	}
	if sc["privileged"] == true {
		return true
	}
	caps, _ := sc["capabilities"].(map[string]any)
	add, _ := caps["add"].([]any)
	return containsString(add, "SYS_ADMIN") || containsString(add, "CAP_SYS_ADMIN")
}

func containsString(list any, s string) bool {
	arr, _ := list.([]any)
	for _, v := range arr {
		if v == s {
			return true
		}
	}
	return false
}

func isZeroNumber(v any) bool {
	switch n := v.(type) {
	case float64:
		return n == 0
	case json.Number:
		return n.String() == "0"
	case int:
		return n == 0
	case int64:
		return n == 0
	}
	return false
}

func quantityLess(a, b any) (bool, error) {
	qa, err := resource.ParseQuantity(fmt.Sprint(a))
	if err != nil {
		return false, fmt.Errorf("%v is not a quantity: %w", a, err)
	}
	qb, err := resource.ParseQuantity(fmt.Sprint(b))
	if err != nil {
		return false, fmt.Errorf("%v is not a quantity: %w", b, err)
	}
	return qa.Cmp(qb) < 0, nil
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func deepCopyJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopyJSON(x)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, x := range t {
			s[i] = deepCopyJSON(x)
		}
		return s
	}
	return v
}

// matchNamespace matches a namespace name against names and path.Match
// globs ("team-*").
func matchNamespace(patterns []string, ns string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, ns); ok {
			return true
		}
	}
	return false
}

package compliance

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Examined counts the objects of one kind that a policy judged in one
// namespace, passed or not. It is what lets an auditor trace a PASSED: a
// control passes because its policies judged these objects and found
// nothing wrong, not because they judged nothing.
type Examined struct {
	// Policy is the policy id.
	Policy string `json:"policy"`
	// Namespace is where the objects live; "" for cluster-scoped objects
	// (and for the cluster Report's counts).
	Namespace string `json:"namespace,omitempty"`
	// Kind is group/Kind, bare for the core group: "Namespace",
	// "apps/Deployment", "rbac.authorization.k8s.io/ClusterRoleBinding"
	// (ExaminedKind builds it).
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// ExaminedKind names an object's kind as Examined records it: the API
// group and the kind, or the kind alone for the core group.
func ExaminedKind(apiVersion, kind string) string {
	group, _, ok := strings.Cut(apiVersion, "/")
	if !ok || group == "" {
		return kind
	}
	return group + "/" + kind
}

// AnnotationExamined is the annotation the audit sets on each Report it
// owns: what its policies examined in the Report's namespace (the cluster
// Report's: cluster-scoped objects), as JSON {"<policy>": {"<kind>":
// <count>}}. ExaminedAnnotation writes it, ParseExaminedAnnotation reads
// it back.
const AnnotationExamined = "tollgate.dev/examined"

// Bounds of the examined annotation: a Report is one object of at most a
// few MiB, and the counts are a summary, never a list of objects.
const (
	MaxExaminedEntries = 10000
	MaxExaminedBytes   = 256 << 10
	// maxExaminedCount keeps sums over many Reports far from overflowing;
	// no cluster holds two billion objects of a kind.
	maxExaminedCount = 1<<31 - 1
)

// ErrExaminedAnnotation marks an unreadable examined annotation, so that
// a caller can tell that a Report's evidence, and not its results, was
// left out.
var ErrExaminedAnnotation = errors.New("unreadable " + AnnotationExamined + " annotation")

// ExaminedAnnotation is the value of AnnotationExamined for counts by
// policy and kind. The JSON has its keys sorted, so the same counts
// always make the same value (and the audit's updates no churn).
func ExaminedAnnotation(counts map[string]map[string]int) (string, error) {
	entries := 0
	for policy, kinds := range counts {
		if policy == "" {
			return "", errors.New("examined counts: empty policy id")
		}
		for kind, n := range kinds {
			if err := checkExamined(policy, kind, n); err != nil {
				return "", err
			}
		}
		if entries += len(kinds); entries > MaxExaminedEntries {
			return "", fmt.Errorf("examined counts: more than %d policy and kind pairs", MaxExaminedEntries)
		}
	}
	data, err := json.Marshal(counts)
	if err != nil {
		return "", fmt.Errorf("examined counts: %w", err)
	}
	if len(data) > MaxExaminedBytes {
		return "", fmt.Errorf("examined counts: %d bytes, over the %d byte limit", len(data), MaxExaminedBytes)
	}
	return string(data), nil
}

func checkExamined(policy, kind string, n int) error {
	switch {
	case kind == "":
		return fmt.Errorf("examined counts: policy %q: empty kind", policy)
	case n < 0:
		return fmt.Errorf("examined counts: policy %q, kind %q: negative count %d", policy, kind, n)
	case n > maxExaminedCount:
		return fmt.Errorf("examined counts: policy %q, kind %q: count %d is over %d", policy, kind, n, maxExaminedCount)
	}
	return nil
}

// ExaminedFromCounts lists counts by policy and kind as Examined entries
// of a namespace, sorted by policy and kind; zero counts are left out.
func ExaminedFromCounts(namespace string, counts map[string]map[string]int) []Examined {
	var out []Examined
	for _, policy := range slices.Sorted(maps.Keys(counts)) {
		kinds := counts[policy]
		for _, kind := range slices.Sorted(maps.Keys(kinds)) {
			if n := kinds[kind]; n > 0 {
				out = append(out, Examined{Policy: policy, Namespace: namespace, Kind: kind, Count: n})
			}
		}
	}
	return out
}

// ExaminedCounts accumulates what policies examined while objects are
// judged: namespace → policy → kind → count. The audit writes each
// namespace's counts with ExaminedAnnotation; a report on manifests
// passes Examined to Input.Examined.
type ExaminedCounts map[string]map[string]map[string]int

// Add counts one object of the kind (as ExaminedKind names it) that the
// policy judged in the namespace ("" for a cluster-scoped object).
func (c ExaminedCounts) Add(namespace, policy, kind string) {
	if c[namespace] == nil {
		c[namespace] = map[string]map[string]int{}
	}
	if c[namespace][policy] == nil {
		c[namespace][policy] = map[string]int{}
	}
	c[namespace][policy][kind]++
}

// Examined lists the counts, sorted by namespace, policy and kind.
func (c ExaminedCounts) Examined() []Examined {
	var out []Examined
	for _, ns := range slices.Sorted(maps.Keys(c)) {
		out = append(out, ExaminedFromCounts(ns, c[ns])...)
	}
	return out
}

// ParseExaminedAnnotation reads an AnnotationExamined value as the counts
// of a namespace. It rejects a value over MaxExaminedBytes, more than
// MaxExaminedEntries pairs, empty names, and counts that are not
// non-negative integers (a number in quotes included).
func ParseExaminedAnnotation(namespace, value string) ([]Examined, error) {
	if len(value) > MaxExaminedBytes {
		return nil, fmt.Errorf("%d bytes, over the %d byte limit", len(value), MaxExaminedBytes)
	}
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	var raw map[string]map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("want JSON {\"<policy>\": {\"<kind>\": <count>}}: %w", err)
	}
	if dec.More() {
		return nil, errors.New("want one JSON object, found more after it")
	}
	if raw == nil {
		return nil, errors.New("want a JSON object, got null")
	}
	counts := map[string]map[string]int{}
	entries := 0
	for policy, kinds := range raw {
		if policy == "" {
			return nil, errors.New("empty policy id")
		}
		if entries += len(kinds); entries > MaxExaminedEntries {
			return nil, fmt.Errorf("more than %d policy and kind pairs", MaxExaminedEntries)
		}
		counts[policy] = make(map[string]int, len(kinds))
		for kind, v := range kinds {
			num, ok := v.(json.Number)
			if !ok {
				return nil, fmt.Errorf("policy %q, kind %q: want a count, got %s", policy, kind, jsonType(v))
			}
			n, err := num.Int64()
			if err != nil {
				return nil, fmt.Errorf("policy %q, kind %q: %s is not an integer", policy, kind, num)
			}
			if n > maxExaminedCount {
				return nil, fmt.Errorf("policy %q, kind %q: count %d is over %d", policy, kind, n, maxExaminedCount)
			}
			if err := checkExamined(policy, kind, int(n)); err != nil {
				return nil, errors.New(strings.TrimPrefix(err.Error(), "examined counts: "))
			}
			counts[policy][kind] = int(n)
		}
	}
	return ExaminedFromCounts(namespace, counts), nil
}

// jsonType names a decoded JSON value's type for an error message.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Evidence is what a control's policies examined, so that an auditor can
// trace a PASSED as well as a FAILED.
type Evidence struct {
	// Examined counts the checks behind the verdict: (object, policy)
	// pairs, summed over the control's policies and namespaces.
	Examined int `json:"examined"`
	// ByKind counts the objects of each kind behind the verdict, sorted
	// by kind. An object several policies judged counts once: in each
	// namespace, a kind counts the most objects any one of the policies
	// examined (the counts do not name the objects, so this is the
	// number known to exist, never more).
	ByKind []KindCount `json:"byKind"`
	// Policies are the control's policies that examined an object or
	// failed one, sorted by id.
	Policies []PolicyEvidence `json:"policies"`
	// Passed are examples of objects that passed the control's policies,
	// at most MaxPassedExamples, sorted by namespace, kind and name;
	// PassedMore counts those left out.
	Passed     []Resource `json:"passed"`
	PassedMore int        `json:"passedMore,omitempty"`
	// Failed counts the results that fail the control (its Failures).
	Failed int `json:"failed"`
}

// MaxPassedExamples bounds the passed objects a control lists.
const MaxPassedExamples = 10

// KindCount is a number of objects of one kind (group/Kind, as Examined
// names it).
type KindCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

// PolicyEvidence is one policy's share of a control's evidence.
type PolicyEvidence struct {
	Policy   string `json:"policy"`
	Examined int    `json:"examined"`
	Failed   int    `json:"failed"`
	Waived   int    `json:"waived"`
}

// examinedKey is one policy's count of one kind in one namespace.
type examinedKey struct{ policy, namespace, kind string }

// examinedIndex holds what each policy examined: the counts the callers
// recorded, raised to the number of distinct objects the results list
// when those are more (a failure is an examination too, whatever an
// incomplete count says).
type examinedIndex struct {
	counts   map[examinedKey]int
	byPolicy map[string][]examinedKey
	// passed are the objects each policy passed, sorted, without
	// duplicates.
	passed map[string][]Resource
}

func newExaminedIndex(examined []Examined, results []Result) *examinedIndex {
	x := &examinedIndex{counts: map[examinedKey]int{}, byPolicy: map[string][]examinedKey{}, passed: map[string][]Resource{}}
	for _, e := range examined {
		if e.Count <= 0 || e.Policy == "" {
			continue
		}
		x.counts[examinedKey{e.Policy, e.Namespace, e.Kind}] += e.Count
	}
	listed := map[examinedKey]map[Resource]bool{}
	for i := range results {
		r := &results[i]
		if r.Source != SourceTollgate || r.Resource.IsZero() {
			continue
		}
		k := examinedKey{r.Policy, r.Resource.Namespace, ExaminedKind(r.Resource.APIVersion, r.Resource.Kind)}
		if listed[k] == nil {
			listed[k] = map[Resource]bool{}
		}
		listed[k][r.Resource] = true
		if r.Result == OutcomePass && !r.Waived() {
			x.passed[r.Policy] = append(x.passed[r.Policy], r.Resource)
		}
	}
	for k, objs := range listed {
		x.counts[k] = max(x.counts[k], len(objs))
	}
	for k := range x.counts {
		x.byPolicy[k.policy] = append(x.byPolicy[k.policy], k)
	}
	for p := range x.passed {
		slices.SortFunc(x.passed[p], compareResources)
		x.passed[p] = slices.Compact(x.passed[p])
	}
	return x
}

func compareResources(a, b Resource) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.APIVersion, b.APIVersion), cmp.Compare(a.UID, b.UID))
}

// evidence gathers a control's evidence from the index and the control's
// failures and waived results.
func (x *examinedIndex) evidence(c *Control, cr *ControlResult) *Evidence {
	ev := &Evidence{ByKind: []KindCount{}, Policies: []PolicyEvidence{}, Passed: []Resource{}, Failed: len(cr.Failures)}
	per := map[string]*PolicyEvidence{}
	pol := func(id string) *PolicyEvidence {
		if per[id] == nil {
			per[id] = &PolicyEvidence{Policy: id}
		}
		return per[id]
	}
	type nsKind struct{ namespace, kind string }
	most := map[nsKind]int{}
	var passed []Resource
	for policy, keys := range x.byPolicy {
		if !c.Evidences(policy) {
			continue
		}
		for _, k := range keys {
			n := x.counts[k]
			pol(policy).Examined += n
			ev.Examined += n
			most[nsKind{k.namespace, k.kind}] = max(most[nsKind{k.namespace, k.kind}], n)
		}
	}
	byKind := map[string]int{}
	for k, n := range most {
		byKind[k.kind] += n
	}
	for policy, objs := range x.passed {
		if c.Evidences(policy) {
			passed = append(passed, objs...)
		}
	}
	for i := range cr.Failures {
		if r := &cr.Failures[i]; r.Source == SourceTollgate && c.Evidences(r.Policy) {
			pol(r.Policy).Failed++
		}
	}
	for i := range cr.Waived {
		if r := &cr.Waived[i]; r.Source == SourceTollgate && c.Evidences(r.Policy) {
			pol(r.Policy).Waived++
		}
	}
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		ev.ByKind = append(ev.ByKind, KindCount{Kind: kind, Count: byKind[kind]})
	}
	for _, id := range slices.Sorted(maps.Keys(per)) {
		ev.Policies = append(ev.Policies, *per[id])
	}
	// An object that passed one policy of the control and failed another
	// is no example of a pass.
	failed := map[Resource]bool{}
	for i := range cr.Failures {
		failed[cr.Failures[i].Resource] = true
	}
	slices.SortFunc(passed, compareResources)
	passed = slices.Compact(passed)
	passed = slices.DeleteFunc(passed, func(r Resource) bool { return failed[r] })
	if len(passed) > MaxPassedExamples {
		ev.PassedMore = len(passed) - MaxPassedExamples
		passed = passed[:MaxPassedExamples]
	}
	ev.Passed = append(ev.Passed, passed...)
	return ev
}

// notEvidencedReason is the reason of a control whose policies examined
// nothing: it is shown as MANUAL rather than as a PASSED nothing stands
// behind.
func notEvidencedReason(c *Control) string {
	return "Not evidenced here: no object of the kinds its policies judge (" + strings.Join(c.Policies, ", ") + ") was examined in this scope, so it is reviewed by hand"
}

// evidenceUnavailableNote is the report note when the results do not say
// what was examined.
const evidenceUnavailableNote = "Evidence counts are unavailable: the results do not record what each policy examined (a scanner that predates the " +
	AnnotationExamined + " annotation wrote them), so a control without failures is shown as passed without the number of objects behind it."

// kindText renders a count of a kind for people: "1 Namespace",
// "14 Namespaces", "3 NetworkPolicies", with the API group left out
// unless short names collide.
func kindText(kc KindCount, short bool) string {
	kind := kc.Kind
	if short {
		if i := strings.LastIndexByte(kind, '/'); i >= 0 {
			kind = kind[i+1:]
		}
	}
	if kc.Count == 1 {
		return "1 " + kind
	}
	return fmt.Sprintf("%d %s", kc.Count, pluralKind(kind))
}

// pluralKind is the English plural of a kind name.
func pluralKind(kind string) string {
	lower := strings.ToLower(kind)
	switch {
	case strings.HasSuffix(lower, "y") && !strings.HasSuffix(lower, "ay") && !strings.HasSuffix(lower, "ey") && !strings.HasSuffix(lower, "oy"):
		return kind[:len(kind)-1] + "ies"
	case strings.HasSuffix(lower, "ss"), strings.HasSuffix(lower, "x"), strings.HasSuffix(lower, "ch"), strings.HasSuffix(lower, "sh"):
		return kind + "es"
	case strings.HasSuffix(lower, "s"):
		// ClusterFacts, Endpoints: already plural.
		return kind
	}
	return kind + "s"
}

// examinedText is a control's evidence on one line: "14 Namespaces,
// 3 ClusterRoleBindings (policies: network-policies 14 examined,
// 2 failed)", with each kind passed through esc and each policy id
// through quote.
func examinedText(ev *Evidence, esc, quote func(string) string) string {
	shorts := map[string]int{}
	for _, kc := range ev.ByKind {
		shorts[kc.Kind[strings.LastIndexByte(kc.Kind, '/')+1:]]++
	}
	var b bytes.Buffer
	for i, kc := range ev.ByKind {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(esc(kindText(kc, shorts[kc.Kind[strings.LastIndexByte(kc.Kind, '/')+1:]] == 1)))
	}
	if len(ev.ByKind) == 0 {
		b.WriteString("no object counted")
	}
	if len(ev.Policies) == 0 {
		return b.String()
	}
	b.WriteString(" (policies: ")
	for i, p := range ev.Policies {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s %d examined, %d failed", quote(p.Policy), p.Examined, p.Failed)
		if p.Waived > 0 {
			fmt.Fprintf(&b, ", %d waived", p.Waived)
		}
	}
	b.WriteString(")")
	return b.String()
}

// passedText renders a passed object for people: "Namespace shop",
// "Deployment shop/checkout".
func passedText(r Resource) string {
	name := r.Name
	if r.Namespace != "" {
		name = r.Namespace + "/" + name
	}
	return strings.TrimSpace(r.Kind + " " + name)
}

// passedExamples renders a control's passed objects, each passed through
// esc: "Namespace payments, Namespace shop and 12 more"; "" when none.
func passedExamples(ev *Evidence, esc func(string) string) string {
	if len(ev.Passed) == 0 {
		return ""
	}
	parts := make([]string, len(ev.Passed))
	for i, r := range ev.Passed {
		parts[i] = esc(passedText(r))
	}
	s := strings.Join(parts, ", ")
	if ev.PassedMore > 0 {
		s += fmt.Sprintf(" and %d more", ev.PassedMore)
	}
	return s
}

// automatedText is a framework's automated share: "33 of 35 controls
// automated (94.3 %)".
func automatedText(s FrameworkSummary) string {
	return fmt.Sprintf("%d of %d controls automated (%s)", s.Automated, s.Controls, percent(s.AutomatedShare))
}

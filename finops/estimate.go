package finops

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tollgate-dev/tollgate/policies"
)

// EstimateOptions configure an Estimator. The zero value prices with
// OpenCost's defaults and runs DaemonSets on one node.
type EstimateOptions struct {
	// Prices is the catalogue; nil means DefaultPrices.
	Prices *Prices
	// Nodes is how many nodes a DaemonSet is charged for, one pod each: a
	// manifest does not say how many nodes its cluster has. Zero means 1.
	Nodes int
	// GPUResources are the resource names charged at the GPU price; nil
	// means DefaultGPUResources.
	GPUResources []string
	// GovernedKinds are the config's governed kinds: those with price
	// lines are priced from their fields at the catalogue's cloud classes.
	GovernedKinds []policies.GovernedKind
}

// Validate reports options that cannot work.
func (o EstimateOptions) Validate() error {
	if o.Prices != nil {
		if err := o.Prices.Validate(); err != nil {
			return err
		}
	}
	if o.Nodes < 0 || o.Nodes > math.MaxInt32 {
		return fmt.Errorf("estimate: Nodes must be between 0 and %d, got %d", math.MaxInt32, o.Nodes)
	}
	return nil
}

// Estimator prices workload objects (JSON-shaped, as manifests and
// admission requests hold them) for a month. Build it once; its methods
// are pure functions, safe for concurrent use, with no I/O.
type Estimator struct {
	prices   *Prices
	nodes    int64
	gpus     []string
	governed []policies.GovernedKind
}

// NewEstimator validates the options and builds an Estimator.
func NewEstimator(o EstimateOptions) (*Estimator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Estimator{
		prices:   cmp.Or(o.Prices, DefaultPrices()),
		nodes:    int64(max(o.Nodes, 1)),
		gpus:     o.GPUResources,
		governed: o.GovernedKinds,
	}
	if e.gpus == nil {
		e.gpus = DefaultGPUResources()
	}
	return e, nil
}

// WithNodes is a copy of the Estimator that charges a DaemonSet for n
// nodes (zero: none), such as the nodes a cluster has that its
// nodeSelector picks.
func (e *Estimator) WithNodes(n int) *Estimator {
	c := *e
	c.nodes = int64(max(n, 0))
	return &c
}

// WithGovernedKinds is a copy of the Estimator that prices these governed
// kinds, such as those of the config loaded now.
func (e *Estimator) WithGovernedKinds(kinds []policies.GovernedKind) *Estimator {
	c := *e
	c.governed = kinds
	return &c
}

// Currency is the currency of the estimates.
func (e *Estimator) Currency() string { return e.prices.Currency }

// WorkloadEstimate is the monthly cost of one object, with the resources
// it reserves across all its pods, and notes on what could not be charged
// so that a reviewer sees an under-estimate for what it is.
type WorkloadEstimate struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Replicas is the number of pods charged: spec.replicas, the node
	// count for a DaemonSet, the pods a Job runs at once, 1 for a Pod, 0
	// for a claim.
	Replicas int64 `json:"replicas"`
	// CPU (cores), Memory (bytes) and GPU are what all the pods reserve.
	CPU    float64 `json:"cpu"`
	Memory float64 `json:"memoryBytes"`
	GPU    float64 `json:"gpu"`
	// Storage is the bytes of volume claimed: a claim's request, or a
	// StatefulSet's and generic ephemeral volumes' claim templates for
	// every pod.
	Storage float64 `json:"storageBytes"`
	// Spot is true when the pod's nodeSelector picks spot nodes, which
	// are charged spot prices.
	Spot bool `json:"spot,omitempty"`
	// Cloud are the price lines of a governed kind (a claim for a managed
	// database): each class its fields name, and what it costs.
	Cloud []CloudCharge `json:"cloud,omitempty"`
	// Monthly is the cost of HoursPerMonth hours.
	Monthly Spend `json:"monthly"`
	// Notes say what was assumed or left uncharged.
	Notes []string `json:"notes,omitempty"`
}

// FieldError is a value that cannot be priced, at its field path in the
// object, so that the CLI can show the file and line and the webhook can
// name the field.
type FieldError struct {
	// Path is map keys (string) and list indexes (int) from the object's
	// root, as manifest.Document.LineOf takes it.
	Path []any
	// Msg says what is wrong.
	Msg string
}

// Error formats the error as "path: message".
func (e *FieldError) Error() string { return policies.FormatPath(e.Path) + ": " + e.Msg }

func fieldErr(path []any, format string, args ...any) *FieldError {
	return &FieldError{Path: slices.Clone(path), Msg: fmt.Sprintf(format, args...)}
}

// replicaRule says how many pods of a kind run.
type replicaRule int

const (
	replicasOne     replicaRule = iota // a Pod
	replicasField                      // spec.replicas, default 1
	replicasNodes                      // one per node
	replicasJob                        // spec.parallelism within spec.completions
	replicasCronJob                    // its job template's
	replicasNone                       // a claim: storage only
)

type kindShape struct {
	template []string // path of the pod template; nil for a Pod itself
	rule     replicaRule
}

type groupKind struct{ group, kind string }

// priced are the kinds an Estimator prices: the built-in pod controllers,
// Pods and claims.
var priced = map[groupKind]kindShape{
	{"", "Pod"}:                   {nil, replicasOne},
	{"", "ReplicationController"}: {[]string{"spec", "template"}, replicasField},
	{"apps", "Deployment"}:        {[]string{"spec", "template"}, replicasField},
	{"apps", "ReplicaSet"}:        {[]string{"spec", "template"}, replicasField},
	{"apps", "StatefulSet"}:       {[]string{"spec", "template"}, replicasField},
	{"apps", "DaemonSet"}:         {[]string{"spec", "template"}, replicasNodes},
	{"extensions", "Deployment"}:  {[]string{"spec", "template"}, replicasField},
	{"extensions", "ReplicaSet"}:  {[]string{"spec", "template"}, replicasField},
	{"extensions", "DaemonSet"}:   {[]string{"spec", "template"}, replicasNodes},
	{"batch", "Job"}:              {[]string{"spec", "template"}, replicasJob},
	{"batch", "CronJob"}:          {[]string{"spec", "jobTemplate", "spec", "template"}, replicasCronJob},
	{"", "PersistentVolumeClaim"}: {nil, replicasNone},
}

// Estimate prices one object for a month. ok is false for kinds that cost
// nothing by themselves (ConfigMaps, Services, ...). The rules:
//
//   - a pod costs its requests (policies.PodRequests: what the scheduler
//     reserves) at the prices of the nodes its nodeSelector picks (an
//     override's labels, a spot label), else the top-level on-demand ones;
//     a container with neither request nor limit for cpu or memory is not
//     charged for it, and a note says so;
//   - Deployment, ReplicaSet, StatefulSet, ReplicationController:
//     spec.replicas pods (1 when unset, noted: an autoscaler may run more);
//   - DaemonSet: one pod per node, EstimateOptions.Nodes nodes;
//   - Job: the pods it runs at once, spec.parallelism (default 1) but no
//     more than spec.completions, charged as if they ran all month: a
//     Job's run time cannot be known from its manifest, so this is an
//     upper bound for any Job that finishes within the month;
//   - CronJob: one Job of its template, by the same rule: as if one run
//     lasted all month (overlapping runs under concurrencyPolicy Allow are
//     not counted); a suspended Job or CronJob costs nothing;
//   - Pod: 1 pod; PersistentVolumeClaim: its requested storage;
//     StatefulSet volumeClaimTemplates and generic ephemeral volumes: their
//     requested storage for every pod;
//   - an object with a controller owner (a Deployment's ReplicaSet, a
//     ReplicaSet's Pod) costs nothing itself: its owner's estimate covers it.
//
// Values the API server would reject (a malformed quantity, negative or
// non-integer replicas, a quantity too large to schedule) are a
// *FieldError naming the field.
func (e *Estimator) Estimate(obj map[string]any) (WorkloadEstimate, bool, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		group = ""
	}
	shape, ok := priced[groupKind{group, kind}]
	var governed *policies.GovernedKind
	if !ok {
		governed = governedKind(e.governed, group, kind)
		if governed == nil || len(governed.Pricing) == 0 {
			return WorkloadEstimate{}, false, nil
		}
	}
	meta, _ := obj["metadata"].(map[string]any)
	est := WorkloadEstimate{APIVersion: apiVersion, Kind: kind}
	est.Namespace, _ = meta["namespace"].(string)
	est.Name, _ = meta["name"].(string)
	if est.Name == "" {
		est.Name, _ = meta["generateName"].(string)
	}
	if owner, ok := controllerOf(meta); ok {
		est.Notes = append(est.Notes, "owned by "+owner+": its owner's estimate covers it")
		return est, true, nil
	}
	var err error
	switch {
	case governed != nil:
		err = e.cloud(obj, governed, &est)
	case shape.rule == replicasNone:
		err = e.claim(obj, &est)
	default:
		err = e.workload(obj, shape, &est)
	}
	if err != nil {
		return WorkloadEstimate{}, true, err
	}
	for _, v := range []float64{est.Monthly.Total, est.CPU, est.Memory, est.GPU, est.Storage} {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return WorkloadEstimate{}, true, errors.New("the estimate overflows: check the prices and the quantities")
		}
	}
	return est, true, nil
}

// controllerOf returns "Kind/name" of an object's controller owner.
func controllerOf(meta map[string]any) (string, bool) {
	refs, _ := meta["ownerReferences"].([]any)
	for _, r := range refs {
		ref, _ := r.(map[string]any)
		if c, _ := ref["controller"].(bool); c {
			kind, _ := ref["kind"].(string)
			name, _ := ref["name"].(string)
			return kind + "/" + name, true
		}
	}
	return "", false
}

// claim prices a PersistentVolumeClaim.
func (e *Estimator) claim(obj map[string]any, est *WorkloadEstimate) error {
	bytes, err := claimStorage(obj, nil)
	if err != nil {
		return err
	}
	est.Storage = bytes
	est.Monthly = spend(0, 0, 0, bytes/gib*e.prices.Sheet.Storage).Scale(HoursPerMonth)
	return nil
}

// claimStorage reads a claim's (or claim template's) requested storage.
func claimStorage(claim map[string]any, path []any) (float64, error) {
	p := append(slices.Clone(path), "spec", "resources", "requests", "storage")
	reqs, err := mapAt(claim, path, p[len(path):len(p)-1])
	if err != nil {
		return 0, err
	}
	q, ok := reqs["storage"]
	if !ok {
		return 0, fieldErr(p, "missing; a claim must request its size, such as 10Gi")
	}
	return quantityAt(p, "storage", q)
}

// workload prices an object that runs pods.
func (e *Estimator) workload(obj map[string]any, shape kindShape, est *WorkloadEstimate) error {
	pods, err := e.replicas(obj, shape.rule, est)
	if err != nil {
		return err
	}
	tmplPath := make([]any, 0, len(shape.template))
	for _, k := range shape.template {
		tmplPath = append(tmplPath, k)
	}
	tmpl, err := mapAt(obj, nil, tmplPath)
	if err != nil {
		return err
	}
	if tmpl == nil {
		return fieldErr(tmplPath, "missing: a %s needs a pod template", est.Kind)
	}
	specPath := append(slices.Clone(tmplPath), "spec")
	spec, err := mapAt(tmpl, tmplPath, []any{"spec"})
	if err != nil {
		return err
	}
	if spec == nil {
		return fieldErr(specPath, "missing: a pod needs a spec with its containers")
	}
	notes := &est.Notes
	if pods == 0 {
		notes = new([]string) // nothing runs: nothing is under-charged
	}
	if err := e.checkPod(spec, specPath, notes); err != nil {
		return err
	}
	var perPodStorage float64
	if shape.rule == replicasField && est.Kind == "StatefulSet" {
		if perPodStorage, err = volumeClaimTemplates(obj); err != nil {
			return err
		}
	}
	eph, err := ephemeralStorage(spec, specPath)
	if err != nil {
		return err
	}
	perPodStorage += eph

	selector := nodeSelector(spec)
	rates := e.prices.ForNode(selector)
	est.Spot = e.prices.IsSpot(selector)
	reqs := policies.PodRequests(spec)
	var gpu float64
	for _, g := range e.gpus {
		gpu += reqs[g]
	}
	n := float64(pods)
	est.Replicas = pods
	est.CPU = reqs["cpu"] * n
	est.Memory = reqs["memory"] * n
	est.GPU = gpu * n
	est.Storage = perPodStorage * n
	est.Monthly = spend(est.CPU*rates.CPU, est.Memory/gib*rates.RAM, est.GPU*rates.GPU,
		est.Storage/gib*e.prices.Sheet.Storage).Scale(HoursPerMonth)
	return nil
}

// replicas is the number of pods an object is charged for, by its kind's
// rule; it adds a note for every assumption.
func (e *Estimator) replicas(obj map[string]any, rule replicaRule, est *WorkloadEstimate) (int64, error) {
	switch rule {
	case replicasOne:
		return 1, nil
	case replicasNodes:
		est.Notes = append(est.Notes, fmt.Sprintf("a %s runs one pod per node: charged for %d node%s", est.Kind, e.nodes, plural(e.nodes)))
		return e.nodes, nil
	case replicasField:
		n, set, err := intAt(obj, []any{"spec", "replicas"})
		if err != nil {
			return 0, err
		}
		if !set {
			est.Notes = append(est.Notes, "spec.replicas is not set: 1 replica assumed (an autoscaler may run more)")
			return 1, nil
		}
		return n, nil
	case replicasJob, replicasCronJob:
		suspended, err := boolAt(obj, []any{"spec", "suspend"})
		if err != nil {
			return 0, err
		}
		if suspended {
			est.Notes = append(est.Notes, "suspended: not charged")
			return 0, nil
		}
		if rule == replicasJob {
			return jobPods(obj, []any{"spec"}, "a Job", est)
		}
		return jobPods(obj, []any{"spec", "jobTemplate", "spec"}, "each run of a CronJob", est)
	}
	return 0, nil
}

// jobPods applies the Job rule to the Job spec at path: the pods it runs
// at once, spec.parallelism (default 1) within spec.completions.
func jobPods(obj map[string]any, path []any, what string, est *WorkloadEstimate) (int64, error) {
	parallelism, set, err := intAt(obj, append(slices.Clone(path), "parallelism"))
	if err != nil {
		return 0, err
	}
	if !set {
		parallelism = 1
	}
	completions, set, err := intAt(obj, append(slices.Clone(path), "completions"))
	if err != nil {
		return 0, err
	}
	if set && completions < parallelism {
		parallelism = completions
	}
	est.Notes = append(est.Notes, fmt.Sprintf("the run time of %s is unknown: charged as %d pod%s running all month", what, parallelism, plural(parallelism)))
	return parallelism, nil
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkPod rejects quantities the API server would reject and notes the
// containers that are not charged for cpu or memory.
func (e *Estimator) checkPod(spec map[string]any, path []any, notes *[]string) error {
	if _, err := checkResources(spec, path); err != nil {
		return err
	}
	// Pod-level requests cover every container (limits do not: the pod's
	// requests are not defaulted from them).
	res, _ := spec["resources"].(map[string]any)
	podLevel, _ := res["requests"].(map[string]any)
	for _, field := range []string{"initContainers", "containers"} {
		list, ok := spec[field]
		if !ok || list == nil {
			if field == "containers" {
				return fieldErr(append(path, field), "missing: a pod needs at least one container")
			}
			continue
		}
		items, ok := list.([]any)
		if !ok {
			return fieldErr(append(path, field), "is %s, want a list of containers", describe(list))
		}
		if field == "containers" && len(items) == 0 {
			return fieldErr(append(path, field), "is empty: a pod needs at least one container")
		}
		for i, item := range items {
			cpath := append(slices.Clone(path), field, i)
			c, ok := item.(map[string]any)
			if !ok {
				return fieldErr(cpath, "is %s, want a container", describe(item))
			}
			set, err := checkResources(c, cpath)
			if err != nil {
				return err
			}
			policy, _ := c["restartPolicy"].(string)
			if field == "initContainers" && policy != "Always" {
				continue // runs before the others, and ends
			}
			name, _ := c["name"].(string)
			if name == "" {
				name = policies.FormatPath([]any{field, i})
			}
			for _, r := range []string{"cpu", "memory"} {
				if _, pod := podLevel[r]; !set[r] && !pod {
					*notes = append(*notes, fmt.Sprintf("container %s has no %s request: not charged", name, r))
				}
			}
		}
	}
	return nil
}

// checkResources validates the quantities of the resources field of m (a
// container, or a pod spec for pod-level resources) and returns the
// resources that have a request, or a limit that stands in for one.
func checkResources(m map[string]any, path []any) (map[string]bool, error) {
	res, err := mapAt(m, path, []any{"resources"})
	if err != nil || res == nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, kind := range []string{"limits", "requests"} {
		kpath := append(slices.Clone(path), "resources", kind)
		values, err := mapAt(res, kpath[:len(kpath)-1], []any{kind})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(values))
		for name := range values {
			names = append(names, name)
		}
		slices.Sort(names) // the first error is the same on every run
		for _, name := range names {
			if _, err := quantityAt(append(kpath, name), name, values[name]); err != nil {
				return nil, err
			}
			set[name] = true
		}
	}
	return set, nil
}

// maxMilli is the largest quantity in milli-units an int64 holds: the
// scheduler counts cpu in millicores and other resources in units, in int64.
const maxMilli = math.MaxInt64 / 1000

// quantityAt reads a quantity the way policies.PodRequests does (a string
// or a number) and rejects what Kubernetes would not schedule.
func quantityAt(path []any, name string, v any) (float64, error) {
	var (
		f   float64
		err error
	)
	switch t := v.(type) {
	case string:
		f, err = parseQuantity(path, t)
	case json.Number:
		f, err = parseQuantity(path, t.String())
	case float64:
		f = t
	case int:
		f = float64(t)
	default:
		return 0, fieldErr(path, "is %s, want a quantity such as 500m, 2 or 1Gi", describe(v))
	}
	if err != nil {
		return 0, err
	}
	text := fmt.Sprint(v)
	switch {
	case f < 0:
		return 0, fieldErr(path, "%s must not be negative", text)
	case name == "cpu" && f > maxMilli:
		return 0, fieldErr(path, "%s cores is more than Kubernetes can schedule (at most %d millicores)", text, int64(math.MaxInt64))
	case f >= math.MaxInt64:
		// ParseQuantity caps binary quantities such as 100Ei at the
		// maximum, so reaching it means beyond it.
		return 0, fieldErr(path, "%s is more than Kubernetes can schedule (less than %d)", text, int64(math.MaxInt64))
	}
	return f, nil
}

// parseQuantity parses a quantity written as text, with the length bound
// policies.PodRequests applies.
func parseQuantity(path []any, text string) (float64, error) {
	if len(text) > 64 {
		return 0, fieldErr(path, "is longer than 64 characters, not a quantity")
	}
	q, err := resource.ParseQuantity(text)
	if err != nil {
		return 0, fieldErr(path, "%q is not a quantity (want a number with an optional suffix, such as 500m, 2 or 1Gi)", text)
	}
	return q.AsApproximateFloat64(), nil
}

// volumeClaimTemplates is the storage a StatefulSet claims for each pod.
func volumeClaimTemplates(obj map[string]any) (float64, error) {
	path := []any{"spec", "volumeClaimTemplates"}
	spec, _ := obj["spec"].(map[string]any)
	v, ok := spec["volumeClaimTemplates"]
	if !ok || v == nil {
		return 0, nil
	}
	list, ok := v.([]any)
	if !ok {
		return 0, fieldErr(path, "is %s, want a list of claim templates", describe(v))
	}
	var total float64
	for i, item := range list {
		ipath := append(slices.Clone(path), i)
		claim, ok := item.(map[string]any)
		if !ok {
			return 0, fieldErr(ipath, "is %s, want a claim template", describe(item))
		}
		b, err := claimStorage(claim, ipath)
		if err != nil {
			return 0, err
		}
		total += b
	}
	return total, nil
}

// ephemeralStorage is the storage a pod's generic ephemeral volumes claim.
func ephemeralStorage(spec map[string]any, path []any) (float64, error) {
	vols, _ := spec["volumes"].([]any)
	var total float64
	for i, v := range vols {
		vol, _ := v.(map[string]any)
		eph, _ := vol["ephemeral"].(map[string]any)
		tmpl, ok := eph["volumeClaimTemplate"].(map[string]any)
		if !ok {
			continue
		}
		b, err := claimStorage(tmpl, append(slices.Clone(path), "volumes", i, "ephemeral", "volumeClaimTemplate"))
		if err != nil {
			return 0, err
		}
		total += b
	}
	return total, nil
}

// nodeSelector is a pod spec's nodeSelector as node labels.
func nodeSelector(spec map[string]any) map[string]string {
	sel, _ := spec["nodeSelector"].(map[string]any)
	if len(sel) == 0 {
		return nil
	}
	out := make(map[string]string, len(sel))
	for k, v := range sel {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// mapAt returns the mapping at rel below m (m itself is at base); nil when
// a field along the way is absent or null, an error when it is not a
// mapping.
func mapAt(m map[string]any, base, rel []any) (map[string]any, error) {
	cur := m
	for i, k := range rel {
		v, ok := cur[k.(string)]
		if !ok || v == nil {
			return nil, nil
		}
		next, ok := v.(map[string]any)
		if !ok {
			p := append(slices.Clone(base), rel[:i+1]...)
			return nil, fieldErr(p, "is %s, want a mapping", describe(v))
		}
		cur = next
	}
	return cur, nil
}

// intAt reads a count such as spec.replicas: an integer from 0 to the
// int32 the API stores. set is false when the field is absent or null.
func intAt(obj map[string]any, path []any) (n int64, set bool, err error) {
	parent, err := mapAt(obj, nil, path[:len(path)-1])
	if err != nil || parent == nil {
		return 0, false, err
	}
	v, ok := parent[path[len(path)-1].(string)]
	if !ok || v == nil {
		return 0, false, nil
	}
	var f float64
	switch t := v.(type) {
	case json.Number:
		i, err := strconv.ParseInt(t.String(), 10, 64)
		if err != nil {
			return 0, false, fieldErr(path, "%s is not an integer", t)
		}
		if i < 0 || i > math.MaxInt32 {
			return 0, false, countRange(path, t.String(), i < 0)
		}
		return i, true, nil
	case float64:
		f = t
	case int:
		f = float64(t)
	case int64:
		f = float64(t)
	default:
		return 0, false, fieldErr(path, "is %s, want an integer", describe(v))
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, false, fieldErr(path, "%v is not an integer", f)
	}
	if f < 0 || f > math.MaxInt32 {
		return 0, false, countRange(path, strconv.FormatFloat(f, 'g', -1, 64), f < 0)
	}
	return int64(f), true, nil
}

func countRange(path []any, text string, negative bool) error {
	if negative {
		return fieldErr(path, "%s must not be negative", text)
	}
	return fieldErr(path, "%s is more than the API accepts (at most %d)", text, math.MaxInt32)
}

// boolAt reads a boolean such as spec.suspend; absent is false.
func boolAt(obj map[string]any, path []any) (bool, error) {
	parent, err := mapAt(obj, nil, path[:len(path)-1])
	if err != nil || parent == nil {
		return false, err
	}
	v, ok := parent[path[len(path)-1].(string)]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fieldErr(path, "is %s, want true or false", describe(v))
	}
	return b, nil
}

// Change is what an update does to the monthly cost: the estimates before
// and after, and the difference.
type Change struct {
	Old WorkloadEstimate `json:"old"`
	New WorkloadEstimate `json:"new"`
	// Monthly is New.Monthly minus Old.Monthly: what the change adds each
	// month, negative when it saves.
	Monthly Spend `json:"monthly"`
}

// EstimateChange is the monthly cost an update adds, for budget-aware
// admission: oldObj is nil on create, newObj nil on delete. Kinds that
// cost nothing give a zero Change. Errors say whether the old or the new
// object is at fault and wrap a *FieldError where one field is.
func (e *Estimator) EstimateChange(oldObj, newObj map[string]any) (Change, error) {
	var c Change
	if oldObj != nil {
		est, _, err := e.Estimate(oldObj)
		if err != nil {
			return Change{}, fmt.Errorf("old object: %w", err)
		}
		c.Old = est
	}
	if newObj != nil {
		est, _, err := e.Estimate(newObj)
		if err != nil {
			return Change{}, fmt.Errorf("new object: %w", err)
		}
		c.New = est
	}
	c.Monthly = c.New.Monthly.Sub(c.Old.Monthly)
	return c, nil
}

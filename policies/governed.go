package policies

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// GovernedKind is a kind beyond the workloads that the platform governs:
// a Crossplane claim or composite resource for a database, a bucket, a DNS
// record. Tollgate copies the ownership labels (team, owner, cost-center,
// environment) from its Namespace onto it, the ownership policies judge
// it, the webhook intercepts it, and the price lines say what it costs a
// month, so `tollgate cost estimate` and budget-aware admission price it
// from its fields.
type GovernedKind struct {
	// Group is the API group ("database.example.org"); empty is the core
	// group.
	Group string `json:"group"`
	// Kind is the kind ("PostgreSQLInstance").
	Kind string `json:"kind"`
	// Pricing are the price lines of one object of the kind; none means
	// it costs nothing by itself (it is still labelled and judged).
	Pricing []PriceLine `json:"pricing,omitempty"`
}

// Price line classes: which part of the price catalogue's cloud section a
// line reads.
const (
	// PriceInstance prices a line at the catalogue's cloud.instanceClasses,
	// per hour: quantity instances for the 730 hours of a month.
	PriceInstance = "instance"
	// PriceStorage prices a line at the catalogue's cloud.storageClasses,
	// per GB-month: quantity GB.
	PriceStorage = "storage"
)

// PriceLine maps an object's fields to one price: the field whose value
// names the catalogue class (a database instance class, a storage class)
// and the quantity charged at that class's price.
type PriceLine struct {
	// Class is PriceInstance or PriceStorage.
	Class string `json:"class"`
	// Key is the dotted path of the field whose value names the class in
	// the catalogue ("spec.parameters.instanceClass").
	Key string `json:"key"`
	// Quantity is how many units are charged: a number ("1", the default)
	// or the dotted path of a field holding one ("spec.parameters.storageGB";
	// a number, a numeric string, or a Kubernetes quantity such as "100Gi",
	// read in GiB for storage).
	Quantity string `json:"quantity,omitempty"`
}

// FieldPathRE is a dotted field path of an object, such as
// spec.parameters.instanceClass: names of letters, digits, '_' and '-'
// separated by dots, the first beginning with a letter (so that no path
// reads as a number, such as -3).
var FieldPathRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

var (
	kindNameRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	groupRE    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	numberRE   = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
)

// QuantityIsPath reports whether a price line's quantity names a field
// rather than giving a number.
func (l PriceLine) QuantityIsPath() bool {
	return l.Quantity != "" && !numberRE.MatchString(l.Quantity)
}

// GovernedKind is the config's entry for a kind, nil when the kind is not
// governed.
func (c *Config) GovernedKind(gvk GroupVersionKind) *GovernedKind {
	for i := range c.GovernedKinds {
		if g := &c.GovernedKinds[i]; g.Kind == gvk.Kind && g.Group == gvk.Group {
			return g
		}
	}
	return nil
}

// validateGovernedKinds checks the governedKinds section, naming each
// field: a kind, a group, each price line's class and paths, and no kind
// twice.
func validateGovernedKinds(kinds []GovernedKind) []error {
	var errs []error
	seen := map[string]int{}
	for i, g := range kinds {
		at := fmt.Sprintf("governedKinds[%d]", i)
		if !kindNameRE.MatchString(g.Kind) {
			errs = append(errs, fmt.Errorf("%s.kind: %q is not a kind (such as PostgreSQLInstance)", at, g.Kind))
		}
		if g.Group != "" && (!groupRE.MatchString(g.Group) || len(g.Group) > 253) {
			errs = append(errs, fmt.Errorf("%s.group: %q is not an API group (such as database.example.org)", at, g.Group))
		}
		if _, ok := workloadGovernedKinds[g.Group+"/"+g.Kind]; ok {
			errs = append(errs, fmt.Errorf("%s: %s is a workload kind, governed already", at, g.Kind))
		}
		id := g.Group + "/" + g.Kind
		if j, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("%s: %s is listed already at governedKinds[%d]", at, id, j))
		} else {
			seen[id] = i
		}
		for k, l := range g.Pricing {
			lat := fmt.Sprintf("%s.pricing[%d]", at, k)
			if l.Class != PriceInstance && l.Class != PriceStorage {
				errs = append(errs, fmt.Errorf("%s.class: %q (want %s or %s)", lat, l.Class, PriceInstance, PriceStorage))
			}
			if !FieldPathRE.MatchString(l.Key) {
				errs = append(errs, fmt.Errorf("%s.key: %q is not a dotted field path such as spec.parameters.instanceClass", lat, l.Key))
			}
			if l.QuantityIsPath() && !FieldPathRE.MatchString(l.Quantity) {
				errs = append(errs, fmt.Errorf("%s.quantity: %q is neither a number nor a dotted field path such as spec.parameters.storageGB", lat, l.Quantity))
			}
		}
	}
	return errs
}

// workloadGovernedKinds are the kinds the built-in rules already govern:
// listing them again would label and price them twice.
var workloadGovernedKinds = map[string]struct{}{
	"/Pod": {}, "/PodTemplate": {}, "/ReplicationController": {}, "/PersistentVolumeClaim": {},
	"apps/Deployment": {}, "apps/ReplicaSet": {}, "apps/StatefulSet": {}, "apps/DaemonSet": {},
	"batch/Job": {}, "batch/CronJob": {},
}

// ErrFieldMissing is wrapped by FieldAt when an object lacks the field.
var ErrFieldMissing = errors.New("missing")

// FieldAt reads the value at a dotted field path of a JSON-shaped object,
// with the path as segments for FormatPath and a manifest's LineOf. A
// field that is absent or null wraps ErrFieldMissing.
func FieldAt(obj map[string]any, dotted string) (any, []any, error) {
	steps := strings.Split(dotted, ".")
	segs := make([]any, 0, len(steps))
	var cur any = obj
	for i, s := range steps {
		segs = append(segs, s)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, segs, fmt.Errorf("%s is not an object", FormatPath(segs[:i]))
		}
		cur = m[s]
		if cur == nil {
			return nil, segs, ErrFieldMissing
		}
	}
	return cur, slices.Clip(segs), nil
}

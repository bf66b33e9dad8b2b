package finops

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tollgate-dev/tollgate/policies"
)

// CloudCharge is one price line of a governed kind's object: the class its
// field names, how many units are charged, and the monthly cost.
type CloudCharge struct {
	// Class is policies.PriceInstance or policies.PriceStorage.
	Class string `json:"class"`
	// Name is the class as the object names it ("db.m5.large", "gp3").
	Name string `json:"name"`
	// Quantity is instances, or GB of storage.
	Quantity float64 `json:"quantity"`
	// Price is the catalogue's: per hour for an instance, per GB-month
	// for storage.
	Price float64 `json:"price"`
	// Monthly is Quantity × Price for a month.
	Monthly float64 `json:"monthly"`
}

// governedKind is the entry of kinds for a group and kind, nil when the
// kind is not governed.
func governedKind(kinds []policies.GovernedKind, group, kind string) *policies.GovernedKind {
	for i := range kinds {
		if g := &kinds[i]; g.Group == group && g.Kind == kind {
			return g
		}
	}
	return nil
}

// cloud prices a governed kind's object for the estimate, with a note
// per price line saying how its cost was reached.
func (e *Estimator) cloud(obj map[string]any, g *policies.GovernedKind, est *WorkloadEstimate) error {
	charges, err := e.prices.CloudCharges(obj, g)
	if err != nil {
		return err
	}
	for _, c := range charges {
		unit := "hour"
		if c.Class == policies.PriceStorage {
			unit = "GB-month"
		}
		est.Cloud = append(est.Cloud, c)
		est.Monthly.Cloud += c.Monthly
		est.Monthly.Total += c.Monthly
		est.Notes = append(est.Notes, fmt.Sprintf("%s class %s: %s × %s %s per %s = %s a month", c.Class, c.Name,
			strconv.FormatFloat(c.Quantity, 'f', -1, 64), strconv.FormatFloat(c.Price, 'f', -1, 64), e.prices.Currency, unit,
			Money(c.Monthly, e.prices.Currency, Cents)))
	}
	return nil
}

// CloudCharges prices a governed kind's object (JSON-shaped) by its price
// lines, at the catalogue's cloud classes: the estimator, the budget gate
// and the cost model's tally all price a claim through it, so a claim
// costs the same before admission, at it and once it exists. A field a
// line names that the object lacks, a class the catalogue does not list or
// a quantity that is not a number is a *FieldError naming the field: an
// object of a priced kind is never silently free.
func (p *Prices) CloudCharges(obj map[string]any, g *policies.GovernedKind) ([]CloudCharge, error) {
	out := make([]CloudCharge, 0, len(g.Pricing))
	for i, line := range g.Pricing {
		raw, path, err := policies.FieldAt(obj, line.Key)
		if err != nil {
			return nil, fieldErr(path, "%v; %s is priced by this field (governedKinds pricing[%d].key names it)", err, g.Kind, i)
		}
		name, ok := raw.(string)
		if !ok || name == "" {
			return nil, fieldErr(path, "is %s, want the name of a %s class", describe(raw), line.Class)
		}
		table, section := p.Cloud.InstanceClasses, "instanceClasses"
		if line.Class == policies.PriceStorage {
			table, section = p.Cloud.StorageClasses, "storageClasses"
		}
		price, ok := table[name]
		if !ok {
			known := slices.Sorted(maps.Keys(table))
			if len(known) == 0 {
				return nil, fieldErr(path, "%s class %q is not in the price catalogue, which lists no cloud.%s", line.Class, name, section)
			}
			return nil, fieldErr(path, "%s class %q is not in the price catalogue's cloud.%s (%s)", line.Class, name, section, strings.Join(known, ", "))
		}
		qty, err := lineQuantity(obj, line, g.Kind, i)
		if err != nil {
			return nil, err
		}
		c := CloudCharge{Class: line.Class, Name: name, Quantity: qty, Price: price, Monthly: qty * price}
		if line.Class == policies.PriceInstance {
			c.Monthly *= HoursPerMonth
		}
		out = append(out, c)
	}
	return out, nil
}

// lineQuantity reads a price line's quantity: 1 when not given, a number
// written in the config, or the number in the field it names (a plain
// number, a numeric string, or a Kubernetes quantity such as 100Gi, in GiB
// for storage).
func lineQuantity(obj map[string]any, line policies.PriceLine, kind string, i int) (float64, error) {
	if line.Quantity == "" {
		return 1, nil
	}
	if !line.QuantityIsPath() {
		return strconv.ParseFloat(line.Quantity, 64)
	}
	raw, path, err := policies.FieldAt(obj, line.Quantity)
	if err != nil {
		return 0, fieldErr(path, "%v; %s's quantity is read from this field (governedKinds pricing[%d].quantity names it)", err, kind, i)
	}
	var q float64
	switch v := raw.(type) {
	case json.Number:
		q, err = v.Float64()
	case float64:
		q = v
	case int64:
		q = float64(v)
	case int:
		q = float64(v)
	case string:
		if f, perr := strconv.ParseFloat(v, 64); perr == nil {
			q = f
			break
		}
		rq, perr := resource.ParseQuantity(v)
		if perr != nil {
			return 0, fieldErr(path, "%q is neither a number nor a quantity such as 100Gi", v)
		}
		q = rq.AsApproximateFloat64()
		if line.Class == policies.PriceStorage {
			q /= gib
		}
	default:
		return 0, fieldErr(path, "is %s, want a number", describe(raw))
	}
	if err != nil {
		return 0, fieldErr(path, "%v", err)
	}
	if q < 0 || q != q || q > 1e12 {
		return 0, fieldErr(path, "%v is not a quantity to charge (want a number from 0 to 1e12)", raw)
	}
	return q, nil
}

// PolicyData is the catalogue's cloud section as policies read it under
// data.tollgate.prices: the currency, and the instance (per hour) and
// storage (per GB-month) classes, so that a size cap's message can say
// what the class costs.
func (p *Prices) PolicyData() map[string]any {
	classes := func(m map[string]float64) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return map[string]any{
		"currency":        p.Currency,
		"instanceClasses": classes(p.Cloud.InstanceClasses),
		"storageClasses":  classes(p.Cloud.StorageClasses),
	}
}

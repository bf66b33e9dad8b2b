package finops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
)

// HoursPerMonth is the month every monthly figure uses, as OpenCost does:
// 365 days × 24 hours / 12 months.
const HoursPerMonth = 730

// DefaultCurrency is the currency of OpenCost's default prices.
const DefaultCurrency = "USD"

// gib is a GiB in bytes: memory and storage are priced per GiB-hour.
const gib = 1 << 30

// Rates are the hourly prices one node charges, in the catalogue's currency.
type Rates struct {
	// CPU is the price of one core for an hour.
	CPU float64 `json:"cpu"`
	// RAM is the price of one GiB of memory for an hour.
	RAM float64 `json:"ram"`
	// GPU is the price of one GPU for an hour.
	GPU float64 `json:"gpu"`
	// Storage is the price of one GiB of claimed volume for an hour.
	Storage float64 `json:"storage"`
}

// orElse returns r with its zero fields taken from fallback, so that a node
// price observed for CPU only still charges memory from the catalogue.
func (r Rates) orElse(fallback Rates) Rates {
	if r.CPU == 0 {
		r.CPU = fallback.CPU
	}
	if r.RAM == 0 {
		r.RAM = fallback.RAM
	}
	if r.GPU == 0 {
		r.GPU = fallback.GPU
	}
	if r.Storage == 0 {
		r.Storage = fallback.Storage
	}
	return r
}

// Sheet is one OpenCost custom-pricing sheet: hourly on-demand and spot
// prices per resource. Its fields are OpenCost's keys.
type Sheet struct {
	CPU     float64 // per core-hour
	SpotCPU float64 // per core-hour on a spot node
	RAM     float64 // per GiB-hour
	SpotRAM float64 // per GiB-hour on a spot node
	GPU     float64 // per GPU-hour
	SpotGPU float64 // per GPU-hour on a spot node
	Storage float64 // per GiB-hour of claimed volume, spot or not
}

// Rates returns the sheet's column for a spot or an on-demand node.
func (s Sheet) Rates(spot bool) Rates {
	if spot {
		return Rates{CPU: s.SpotCPU, RAM: s.SpotRAM, GPU: s.SpotGPU, Storage: s.Storage}
	}
	return Rates{CPU: s.CPU, RAM: s.RAM, GPU: s.GPU, Storage: s.Storage}
}

// Override prices the nodes that carry every label of NodeSelector, such as
// one instance type, with their own sheet.
type Override struct {
	// NodeSelector is the labels a node must carry, all of them.
	NodeSelector map[string]string
	// Sheet is complete: ParsePrices fills the keys an override leaves out
	// from the top-level sheet. Its Storage is always the top-level one,
	// because a volume is priced where it is claimed, not on a node.
	Sheet Sheet
}

// Prices is the price catalogue: OpenCost's custom-pricing sheet, the
// currency, per-node-label overrides and the labels that mark spot nodes.
// Build it with DefaultPrices or ParsePrices; it is read-only afterwards and
// safe to share between goroutines.
type Prices struct {
	// Provider and Description are OpenCost's informational keys.
	Provider    string
	Description string
	// Currency is an ISO 4217 code; every price is in it.
	Currency string
	// Sheet prices the nodes no override matches, and every volume.
	Sheet Sheet
	// Overrides are tried in order; the first whose selector matches a
	// node's labels prices that node.
	Overrides []Override
	// SpotLabels mark spot (preemptible) nodes: a node carrying any of
	// these label values is charged the sheet's spot prices.
	SpotLabels map[string]string
	// Cloud prices the platform's cloud resources (the databases, buckets
	// and disks its claims provision) by the classes it defines.
	Cloud CloudPrices
}

// CloudPrices are platform-defined classes of cloud resources and their
// prices, which the config's governedKinds price lines name: a claim for a
// managed database is priced from its instance class and its storage.
type CloudPrices struct {
	// InstanceClasses are prices per hour of one instance, by class name
	// ("db.m5.large").
	InstanceClasses map[string]float64
	// StorageClasses are prices per GB-month, by class name ("gp3").
	StorageClasses map[string]float64
}

// DefaultSpotLabels are the labels the common node provisioners put on spot
// nodes: Karpenter, GKE (spot and preemptible), EKS managed node groups and
// AKS spot pools.
func DefaultSpotLabels() map[string]string {
	return map[string]string{
		"karpenter.sh/capacity-type":            "spot",
		"cloud.google.com/gke-spot":             "true",
		"cloud.google.com/gke-preemptible":      "true",
		"eks.amazonaws.com/capacityType":        "SPOT",
		"kubernetes.azure.com/scalesetpriority": "spot",
	}
}

// DefaultSheet is OpenCost's configs/default.json (GCP us-central1). It has
// no spotGPU, so spot GPUs cost the on-demand price.
func DefaultSheet() Sheet {
	return Sheet{
		CPU:     0.031611,
		SpotCPU: 0.006655,
		RAM:     0.004237,
		SpotRAM: 0.000892,
		GPU:     0.95,
		SpotGPU: 0.95,
		Storage: 0.00005479452,
	}
}

// DefaultPrices is the catalogue used when none is configured: OpenCost's
// default prices in USD, no overrides and the default spot labels.
func DefaultPrices() *Prices {
	return &Prices{
		Provider:    "custom",
		Description: "OpenCost default prices (GCP us-central1)",
		Currency:    DefaultCurrency,
		Sheet:       DefaultSheet(),
		SpotLabels:  DefaultSpotLabels(),
	}
}

// IsSpot reports whether a node with these labels is a spot node.
func (p *Prices) IsSpot(labels map[string]string) bool {
	for k, v := range p.SpotLabels {
		if got, ok := labels[k]; ok && got == v {
			return true
		}
	}
	return false
}

// ForNode returns the hourly rates of a node with these labels: the sheet of
// the first override whose selector matches (else the top-level sheet), in
// its spot column when a spot label matches.
func (p *Prices) ForNode(labels map[string]string) Rates {
	return p.sheetFor(labels).Rates(p.IsSpot(labels))
}

func (p *Prices) sheetFor(labels map[string]string) Sheet {
	for i := range p.Overrides {
		if matches(p.Overrides[i].NodeSelector, labels) {
			return p.Overrides[i].Sheet
		}
	}
	return p.Sheet
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Validate reports a catalogue that would price nonsense: a negative or
// non-finite price, a missing currency, an override without a selector. A
// Prices from ParsePrices is already valid; Validate is for one built in Go.
func (p *Prices) Validate() error {
	if p == nil {
		return errors.New("prices: none given")
	}
	if !validCurrency(p.Currency) {
		return fmt.Errorf("prices: currencyCode %q is not an ISO 4217 code such as USD", p.Currency)
	}
	if err := p.Sheet.validate(""); err != nil {
		return err
	}
	for _, c := range []struct {
		field  string
		prices map[string]float64
	}{{"instanceClasses", p.Cloud.InstanceClasses}, {"storageClasses", p.Cloud.StorageClasses}} {
		for _, name := range slices.Sorted(maps.Keys(c.prices)) {
			if name == "" {
				return fmt.Errorf("prices: %s.%s: a class name is empty", keyCloud, c.field)
			}
			if v := c.prices[name]; !validPrice(v) {
				return fmt.Errorf("prices: %s.%s[%q]: %v is not a price (want a finite number, zero or more)", keyCloud, c.field, name, v)
			}
		}
	}
	for i, o := range p.Overrides {
		if len(o.NodeSelector) == 0 {
			return fmt.Errorf("prices: overrides[%d].nodeSelector: must name at least one label, or every node would match", i)
		}
		if err := o.Sheet.validate(fmt.Sprintf("overrides[%d].", i)); err != nil {
			return err
		}
	}
	return nil
}

func (s Sheet) validate(prefix string) error {
	for _, f := range sheetFields {
		if v := *f.ptr(&s); !validPrice(v) {
			return fmt.Errorf("prices: %s%s: %v is not a price (want a finite number, zero or more)", prefix, f.key, v)
		}
	}
	return nil
}

func validPrice(v float64) bool { return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// sheetField is one OpenCost price key and where it lives in a Sheet.
type sheetField struct {
	key  string
	unit string
	ptr  func(*Sheet) *float64
}

// sheetFields are the OpenCost keys Tollgate reads, in OpenCost's order.
var sheetFields = []sheetField{
	{"CPU", "core-hour", func(s *Sheet) *float64 { return &s.CPU }},
	{"spotCPU", "core-hour", func(s *Sheet) *float64 { return &s.SpotCPU }},
	{"RAM", "GiB-hour", func(s *Sheet) *float64 { return &s.RAM }},
	{"spotRAM", "GiB-hour", func(s *Sheet) *float64 { return &s.SpotRAM }},
	{"GPU", "GPU-hour", func(s *Sheet) *float64 { return &s.GPU }},
	{"spotGPU", "GPU-hour", func(s *Sheet) *float64 { return &s.SpotGPU }},
	{"storage", "GiB-hour", func(s *Sheet) *float64 { return &s.Storage }},
}

// Keys of the prices document beside the sheet's.
const (
	keyProvider       = "provider"
	keyDescription    = "description"
	keyCurrency       = "currencyCode"
	keySpotLabel      = "spotLabel"
	keySpotLabelValue = "spotLabelValue"
	keySpotLabels     = "spotLabels"
	keyOverrides      = "overrides"
	keyNodeSelector   = "nodeSelector"
	keyCloud          = "cloud"
)

// ParsePrices reads a price catalogue, YAML or JSON. The document is an
// OpenCost custom-pricing sheet (configs/default.json parses as is), values
// as strings or numbers, plus Tollgate's keys:
//
//	provider: custom
//	description: prod cluster, EUR list prices
//	currencyCode: EUR             # ISO 4217; default USD
//	CPU: "0.031611"               # per core-hour
//	spotCPU: "0.006655"
//	RAM: "0.004237"               # per GiB-hour
//	spotRAM: "0.000892"
//	GPU: "0.95"                   # per GPU-hour
//	spotGPU: "0.95"
//	storage: "0.00005479452"      # per GiB-hour of claimed volume
//	spotLabels:                   # replace DefaultSpotLabels when given
//	  karpenter.sh/capacity-type: spot
//	spotLabel: lifecycle          # OpenCost's single spot label, added to them
//	spotLabelValue: spot
//	overrides:                    # first match wins
//	  - nodeSelector: {node.kubernetes.io/instance-type: p3.2xlarge}
//	    GPU: "3.06"
//	    spotGPU: "0.918"
//	cloud:                        # platform-defined cloud classes
//	  instanceClasses:            # per hour of one instance
//	    db.m5.large: "0.171"
//	  storageClasses:             # per GB-month
//	    gp3: "0.08"
//
// A key left out keeps OpenCost's default (in an override, the top-level
// value), except that a sheet giving GPU without spotGPU charges spot GPUs
// the GPU price. Other OpenCost keys (network egress, discounts, cloud
// credentials) are accepted and ignored; a key that differs from one of
// Tollgate's only by case is an error, as a typo that would silently keep
// a default. Errors name the field.
func ParsePrices(data []byte) (*Prices, error) {
	js, err := sigsyaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("prices: not YAML or JSON: %w", policies.YAMLError(data, err))
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	p := DefaultPrices()
	p.Description = ""
	if doc == nil {
		return p, nil // an empty document: the defaults
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("prices: the document is %s, want a mapping of OpenCost price keys", describe(doc))
	}
	if err := checkKeys("", top, topKeys(), false); err != nil {
		return nil, err
	}
	if p.Provider, err = stringKey(top, keyProvider, p.Provider); err != nil {
		return nil, err
	}
	if p.Description, err = stringKey(top, keyDescription, ""); err != nil {
		return nil, err
	}
	if p.Currency, err = stringKey(top, keyCurrency, DefaultCurrency); err != nil {
		return nil, err
	}
	if !validCurrency(p.Currency) {
		return nil, fmt.Errorf("prices: %s: %q is not an ISO 4217 code such as USD or EUR", keyCurrency, p.Currency)
	}
	if err := readSheet("", top, &p.Sheet); err != nil {
		return nil, err
	}
	if v, ok := top[keySpotLabels]; ok {
		if p.SpotLabels, err = labelMap(keySpotLabels, v); err != nil {
			return nil, err
		}
	}
	label, err := stringKey(top, keySpotLabel, "")
	if err != nil {
		return nil, err
	}
	value, err := stringKey(top, keySpotLabelValue, "")
	if err != nil {
		return nil, err
	}
	switch {
	case label != "" && value != "":
		p.SpotLabels[label] = value
	case label != "" || value != "":
		return nil, fmt.Errorf("prices: %s and %s go together: give both or neither", keySpotLabel, keySpotLabelValue)
	}
	if v, ok := top[keyOverrides]; ok {
		if p.Overrides, err = readOverrides(v, p.Sheet); err != nil {
			return nil, err
		}
	}
	if v, ok := top[keyCloud]; ok && v != nil {
		if p.Cloud, err = readCloud(v); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// readCloud reads the cloud section: instance classes per hour and
// storage classes per GB-month, each price a number or a string.
func readCloud(v any) (CloudPrices, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return CloudPrices{}, fmt.Errorf("prices: %s: is %s, want a mapping with instanceClasses and storageClasses", keyCloud, describe(v))
	}
	if err := checkKeys(keyCloud+".", m, []string{"instanceClasses", "storageClasses"}, true); err != nil {
		return CloudPrices{}, err
	}
	var out CloudPrices
	for _, c := range []struct {
		field, unit string
		dst         *map[string]float64
	}{{"instanceClasses", "instance-hour", &out.InstanceClasses}, {"storageClasses", "GB-month", &out.StorageClasses}} {
		raw, ok := m[c.field]
		if !ok || raw == nil {
			continue
		}
		classes, ok := raw.(map[string]any)
		if !ok {
			return CloudPrices{}, fmt.Errorf("prices: %s.%s: is %s, want a mapping of class names to prices", keyCloud, c.field, describe(raw))
		}
		*c.dst = make(map[string]float64, len(classes))
		for _, name := range slices.Sorted(maps.Keys(classes)) {
			if strings.TrimSpace(name) == "" {
				return CloudPrices{}, fmt.Errorf("prices: %s.%s: a class name is empty", keyCloud, c.field)
			}
			price, set, err := parsePrice(classes[name])
			if err != nil {
				return CloudPrices{}, fmt.Errorf("prices: %s.%s[%q]: %w (want currency units per %s, such as \"0.171\")", keyCloud, c.field, name, err, c.unit)
			}
			if !set {
				return CloudPrices{}, fmt.Errorf("prices: %s.%s[%q]: no price given (want currency units per %s, such as \"0.171\")", keyCloud, c.field, name, c.unit)
			}
			(*c.dst)[name] = price
		}
	}
	return out, nil
}

func topKeys() []string {
	keys := []string{keyProvider, keyDescription, keyCurrency, keySpotLabel, keySpotLabelValue, keySpotLabels, keyOverrides, keyCloud}
	for _, f := range sheetFields {
		keys = append(keys, f.key)
	}
	return keys
}

// checkKeys rejects keys that are one of known in the wrong case, and, when
// strict, any key not in known.
func checkKeys(prefix string, m map[string]any, known []string, strict bool) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(known, k) {
			continue
		}
		for _, want := range known {
			if strings.EqualFold(k, want) {
				return fmt.Errorf("prices: %s%s: unknown key; did you mean %q? (keys are case-sensitive)", prefix, k, want)
			}
		}
		if strict {
			return fmt.Errorf("prices: %s%s: unknown key (want one of %s)", prefix, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// readSheet sets the prices m gives. When m gives GPU but not spotGPU, the
// spot price is the GPU price: OpenCost's default.json has no spotGPU.
func readSheet(prefix string, m map[string]any, s *Sheet) error {
	gpuSet, spotGPUSet := false, false
	for _, f := range sheetFields {
		v, ok := m[f.key]
		if !ok {
			continue
		}
		price, set, err := parsePrice(v)
		if err != nil {
			return fmt.Errorf("prices: %s%s: %w (want currency units per %s, such as \"0.031611\")", prefix, f.key, err, f.unit)
		}
		if set {
			*f.ptr(s) = price
			gpuSet = gpuSet || f.key == "GPU"
			spotGPUSet = spotGPUSet || f.key == "spotGPU"
		}
	}
	if gpuSet && !spotGPUSet {
		s.SpotGPU = s.GPU
	}
	return nil
}

// parsePrice reads a price written as a string (OpenCost's form) or a
// number. An empty string or null leaves the default, as OpenCost does.
func parsePrice(v any) (float64, bool, error) {
	var text string
	switch t := v.(type) {
	case nil:
		return 0, false, nil
	case string:
		text = strings.TrimSpace(t)
		if text == "" {
			return 0, false, nil
		}
	case json.Number:
		text = t.String()
	default:
		return 0, false, fmt.Errorf("is %s, not a price", describe(v))
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%q is not a number", text)
	}
	if !validPrice(f) {
		return 0, false, fmt.Errorf("%s is not a price: it must be finite and not negative", text)
	}
	return f, true, nil
}

func stringKey(m map[string]any, key, def string) (string, error) {
	v, ok := m[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("prices: %s: is %s, want a string", key, describe(v))
	}
	if s == "" {
		return def, nil
	}
	return s, nil
}

// labelMap reads a map of label keys to values. Values must be strings, as
// node labels are; an unquoted YAML true would otherwise never match.
func labelMap(field string, v any) (map[string]string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("prices: %s: is %s, want a mapping of label keys to values", field, describe(v))
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			return nil, fmt.Errorf("prices: %s[%q]: is %s, want a string (quote values such as \"true\")", field, k, describe(val))
		}
		if k == "" {
			return nil, fmt.Errorf("prices: %s: a label key is empty", field)
		}
		out[k] = s
	}
	return out, nil
}

func readOverrides(v any, base Sheet) ([]Override, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("prices: %s: is %s, want a list of {nodeSelector, prices}", keyOverrides, describe(v))
	}
	known := []string{keyNodeSelector}
	for _, f := range sheetFields {
		if f.key != "storage" {
			known = append(known, f.key)
		}
	}
	out := make([]Override, 0, len(list))
	for i, item := range list {
		prefix := fmt.Sprintf("%s[%d].", keyOverrides, i)
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("prices: %s: is %s, want a mapping", strings.TrimSuffix(prefix, "."), describe(item))
		}
		if _, ok := m["storage"]; ok {
			return nil, fmt.Errorf("prices: %sstorage: volumes are priced cluster-wide, not per node; set storage at the top level", prefix)
		}
		if err := checkKeys(prefix, m, known, true); err != nil {
			return nil, err
		}
		sel, ok := m[keyNodeSelector]
		if !ok {
			return nil, fmt.Errorf("prices: %s%s: missing; an override applies to the nodes carrying these labels", prefix, keyNodeSelector)
		}
		labels, err := labelMap(prefix+keyNodeSelector, sel)
		if err != nil {
			return nil, err
		}
		if len(labels) == 0 {
			return nil, fmt.Errorf("prices: %s%s: must name at least one label, or every node would match", prefix, keyNodeSelector)
		}
		o := Override{NodeSelector: labels, Sheet: base}
		if err := readSheet(prefix, m, &o.Sheet); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// describe names a decoded JSON value's type for an error message.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", t)
	case json.Number, float64, int, int64:
		return fmt.Sprintf("the number %v", t)
	case bool:
		return fmt.Sprintf("the boolean %v", t)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

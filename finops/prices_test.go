package finops

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// OpenCost's configs/default.json parses to the defaults: the network keys
// are accepted and ignored, and the missing spotGPU is the GPU price.
func TestParsePricesOpenCostDefault(t *testing.T) {
	p, err := ParsePrices(readTestdata(t, "opencost-default.json"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultSheet(), p.Sheet); diff != "" {
		t.Errorf("sheet (-want +got):\n%s", diff)
	}
	if p.Currency != "USD" || p.Provider != "custom" || p.Description != "Default prices based on GCP us-central1" {
		t.Errorf("currency %q provider %q description %q", p.Currency, p.Provider, p.Description)
	}
	if diff := cmp.Diff(DefaultSpotLabels(), p.SpotLabels); diff != "" {
		t.Errorf("spot labels (-want +got):\n%s", diff)
	}
}

func TestParsePricesExample(t *testing.T) {
	p, err := ParsePrices(readTestdata(t, "prices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	top := Sheet{CPU: 0.029, SpotCPU: 0.0061, RAM: 0.0039, SpotRAM: 0.00082, GPU: 0.87, SpotGPU: 0.26, Storage: 0.00005}
	want := &Prices{
		Provider:    "custom",
		Description: "prod cluster, EUR list prices",
		Currency:    "EUR",
		Sheet:       top,
		SpotLabels: map[string]string{
			"karpenter.sh/capacity-type":     "spot",
			"eks.amazonaws.com/capacityType": "SPOT",
			"node-lifecycle":                 "spot",
		},
		Overrides: []Override{
			{NodeSelector: map[string]string{"node.kubernetes.io/instance-type": "p3.2xlarge"},
				Sheet: Sheet{CPU: 0.029, SpotCPU: 0.0061, RAM: 0.0039, SpotRAM: 0.00082, GPU: 2.82, SpotGPU: 0.85, Storage: 0.00005}},
			{NodeSelector: map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge"},
				Sheet: Sheet{CPU: 0.044, SpotCPU: 0.0061, RAM: 0.0058, SpotRAM: 0.00082, GPU: 0.87, SpotGPU: 0.26, Storage: 0.00005}},
			{NodeSelector: map[string]string{"topology.kubernetes.io/zone": "eu-west-1a"},
				Sheet: Sheet{CPU: 0.031, SpotCPU: 0.0061, RAM: 0.0039, SpotRAM: 0.00082, GPU: 0.87, SpotGPU: 0.26, Storage: 0.00005}},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParsePricesValues(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want Sheet
	}{
		{"empty document is the defaults", "", DefaultSheet()},
		{"comments only", "# nothing\n", DefaultSheet()},
		{"numbers and strings", `{"CPU": 0.04, "RAM": "0.005"}`,
			Sheet{CPU: 0.04, SpotCPU: 0.006655, RAM: 0.005, SpotRAM: 0.000892, GPU: 0.95, SpotGPU: 0.95, Storage: 0.00005479452}},
		{"an empty string keeps the default", `CPU: ""`, DefaultSheet()},
		{"GPU without spotGPU sets both", `GPU: 2`,
			Sheet{CPU: 0.031611, SpotCPU: 0.006655, RAM: 0.004237, SpotRAM: 0.000892, GPU: 2, SpotGPU: 2, Storage: 0.00005479452}},
		{"spotGPU alone", `spotGPU: 0.3`,
			Sheet{CPU: 0.031611, SpotCPU: 0.006655, RAM: 0.004237, SpotRAM: 0.000892, GPU: 0.95, SpotGPU: 0.3, Storage: 0.00005479452}},
		{"zero is a price", `storage: 0`,
			Sheet{CPU: 0.031611, SpotCPU: 0.006655, RAM: 0.004237, SpotRAM: 0.000892, GPU: 0.95, SpotGPU: 0.95}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrices([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, p.Sheet); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePricesErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"not a number", `CPU: "abc"`, `prices: CPU: "abc" is not a number (want currency units per core-hour`},
		{"negative", `RAM: "-1"`, `prices: RAM: -1 is not a price: it must be finite and not negative`},
		{"infinite", `GPU: "Inf"`, `prices: GPU: Inf is not a price`},
		{"a list", `storage: [1]`, `prices: storage: is a list, not a price`},
		{"a boolean", `spotCPU: true`, `prices: spotCPU: is the boolean true, not a price`},
		{"wrong case", `cpu: "0.1"`, `prices: cpu: unknown key; did you mean "CPU"?`},
		{"currency", `currencyCode: dollars`, `prices: currencyCode: "dollars" is not an ISO 4217 code`},
		{"currency type", `currencyCode: 978`, `prices: currencyCode: is the number 978, want a string`},
		{"not a mapping", `- CPU: 1`, `prices: the document is a list, want a mapping`},
		{"YAML syntax", "CPU: [1\n", `prices: not YAML or JSON`},
		{"spot label alone", `spotLabel: lifecycle`, `prices: spotLabel and spotLabelValue go together`},
		{"spot labels not a map", `spotLabels: [a]`, `prices: spotLabels: is a list, want a mapping of label keys to values`},
		{"spot label value not a string", `spotLabels: {cloud.google.com/gke-spot: true}`,
			`prices: spotLabels["cloud.google.com/gke-spot"]: is the boolean true, want a string (quote values such as "true")`},
		{"overrides not a list", `overrides: {CPU: 1}`, `prices: overrides: is a mapping, want a list`},
		{"override not a mapping", `overrides: [1]`, `prices: overrides[0]: is the number 1, want a mapping`},
		{"override without selector", `overrides: [{CPU: 1}]`, `prices: overrides[0].nodeSelector: missing`},
		{"override with empty selector", `overrides: [{nodeSelector: {}, CPU: 1}]`, `prices: overrides[0].nodeSelector: must name at least one label`},
		{"override unknown key", `overrides: [{nodeSelector: {a: b}, CPUs: 1}]`, `prices: overrides[0].CPUs: unknown key (want one of nodeSelector, CPU,`},
		{"override storage", `overrides: [{nodeSelector: {a: b}, storage: 1}]`, `prices: overrides[0].storage: volumes are priced cluster-wide`},
		{"override bad price", "overrides:\n- nodeSelector: {a: b}\n- nodeSelector: {c: d}\n  RAM: x\n", `prices: overrides[1].RAM: "x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePrices([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestForNode(t *testing.T) {
	p, err := ParsePrices(readTestdata(t, "prices.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   Rates
	}{
		{"no labels: top-level on-demand", nil, Rates{CPU: 0.029, RAM: 0.0039, GPU: 0.87, Storage: 0.00005}},
		{"spot label: top-level spot", map[string]string{"karpenter.sh/capacity-type": "spot"},
			Rates{CPU: 0.0061, RAM: 0.00082, GPU: 0.26, Storage: 0.00005}},
		{"OpenCost's spot label", map[string]string{"node-lifecycle": "spot"},
			Rates{CPU: 0.0061, RAM: 0.00082, GPU: 0.26, Storage: 0.00005}},
		{"a spot label with another value is not spot", map[string]string{"karpenter.sh/capacity-type": "on-demand"},
			Rates{CPU: 0.029, RAM: 0.0039, GPU: 0.87, Storage: 0.00005}},
		{"a default spot label the file replaced", map[string]string{"cloud.google.com/gke-spot": "true"},
			Rates{CPU: 0.029, RAM: 0.0039, GPU: 0.87, Storage: 0.00005}},
		{"override by instance type", map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge"},
			Rates{CPU: 0.044, RAM: 0.0058, GPU: 0.87, Storage: 0.00005}},
		{"override on spot", map[string]string{"node.kubernetes.io/instance-type": "p3.2xlarge", "eks.amazonaws.com/capacityType": "SPOT"},
			Rates{CPU: 0.0061, RAM: 0.00082, GPU: 0.85, Storage: 0.00005}},
		{"first match wins", map[string]string{"node.kubernetes.io/instance-type": "m5.xlarge", "topology.kubernetes.io/zone": "eu-west-1a"},
			Rates{CPU: 0.044, RAM: 0.0058, GPU: 0.87, Storage: 0.00005}},
		{"later override", map[string]string{"node.kubernetes.io/instance-type": "c5.large", "topology.kubernetes.io/zone": "eu-west-1a"},
			Rates{CPU: 0.031, RAM: 0.0039, GPU: 0.87, Storage: 0.00005}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, p.ForNode(tt.labels)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultSpotLabels(t *testing.T) {
	p := DefaultPrices()
	for k, v := range map[string]string{
		"karpenter.sh/capacity-type":     "spot",
		"cloud.google.com/gke-spot":      "true",
		"eks.amazonaws.com/capacityType": "SPOT",
	} {
		if got := p.ForNode(map[string]string{k: v}); got.CPU != 0.006655 || got.RAM != 0.000892 {
			t.Errorf("%s=%s: %+v, want spot prices", k, v, got)
		}
	}
}

func TestPricesValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Prices)
		want   string
	}{
		{"defaults", func(*Prices) {}, ""},
		{"currency", func(p *Prices) { p.Currency = "" }, `currencyCode "" is not an ISO 4217 code`},
		{"negative", func(p *Prices) { p.Sheet.RAM = -1 }, "prices: RAM: -1 is not a price"},
		{"override selector", func(p *Prices) { p.Overrides = []Override{{Sheet: DefaultSheet()}} }, "overrides[0].nodeSelector: must name at least one label"},
		{"override price", func(p *Prices) {
			s := DefaultSheet()
			s.SpotGPU = -2
			p.Overrides = []Override{{NodeSelector: map[string]string{"a": "b"}, Sheet: s}}
		}, "prices: overrides[0].spotGPU: -2 is not a price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPrices()
			tt.modify(p)
			err := p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
	var nilPrices *Prices
	if err := nilPrices.Validate(); err == nil {
		t.Error("nil prices validated")
	}
}

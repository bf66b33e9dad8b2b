package finops

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

// workloadSeeds are the workloads of the repository's manifests and the
// library's resources fixtures, each as its own YAML document.
func workloadSeeds(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, root := range []string{"../test/manifests", "../test/demo/manifests", "../policies/library/resources/testdata"} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, "suite.yaml") || strings.HasSuffix(p, "config.yaml") {
				return nil //nolint:nilerr // a missing tree only removes seeds
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range strings.Split(string(data), "\n---") {
				if strings.Contains(doc, "kind:") {
					out = append(out, doc)
				}
			}
			return nil
		})
	}
	return out
}

// pricesProblem is how a catalogue's problem begins: the line of a YAML
// error, the key at fault (overrides[0].nodeSelector), or the document.
var pricesProblem = regexp.MustCompile(`^prices: (not YAML or JSON: .*\bline \d+: |the document is |[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*(:| and ))`)

// priceFields are the prices of a catalogue and its overrides.
func priceFields(p *Prices) []float64 {
	sheets := []Sheet{p.Sheet}
	for _, o := range p.Overrides {
		sheets = append(sheets, o.Sheet)
	}
	var out []float64
	for _, s := range sheets {
		out = append(out, s.CPU, s.SpotCPU, s.RAM, s.SpotRAM, s.GPU, s.SpotGPU, s.Storage)
	}
	return out
}

// FuzzPrices reads any bytes as a price catalogue and prices a workload
// with it: never a panic; a catalogue refused says which key is wrong; an
// accepted one holds only finite, non-negative prices and a currency code;
// a workload is priced at a finite, non-negative monthly cost, whose parts
// add up to its total, written by Money as an amount, or refused with the
// field at fault.
func FuzzPrices(f *testing.F) {
	var prices []string
	for _, p := range []string{"testdata/prices.yaml", "testdata/opencost-default.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		prices = append(prices, string(data))
	}
	prices = append(prices, "", "CPU: 1e308\nRAM: 1e308\n", "CPU: '1.7976931348623157e308'\n", "CPU: NaN\n", "CPU: -0\n", "a: b: c\n", "CPU: 1\nRAM: \x01\n", "overrides: [{}]\n", "spotLabels: {'': x}\n",
		"GPU: '5'\noverrides: [{nodeSelector: {a: b}, CPU: 2}]\n", "currencyCode: eur\n", "cpu: 1\n", "[1]\n")
	workloads := workloadSeeds(f)
	workloads = append(workloads,
		"apiVersion: v1\nkind: Pod\nspec: {containers: [{resources: {requests: {cpu: '1e18', memory: 8Ei}}}]}\n",
		"apiVersion: apps/v1\nkind: Deployment\nspec: {replicas: 2147483647, template: {spec: {containers: [{resources: {requests: {cpu: 1k, nvidia.com/gpu: 1k}}}]}}}\n",
		"apiVersion: v1\nkind: PersistentVolumeClaim\nspec: {resources: {requests: {storage: 1E}}}\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nspec: {template: {spec: {containers: [{resources: {requests: {cpu: '-1'}}}]}}}\n",
	)
	for i, p := range prices {
		for j, w := range workloads {
			if (i+j)%3 == 0 {
				f.Add([]byte(p), []byte(w))
			}
		}
	}
	f.Fuzz(func(t *testing.T, priceDoc, workload []byte) {
		p, err := ParsePrices(priceDoc)
		if err != nil {
			if !pricesProblem.MatchString(err.Error()) {
				t.Fatalf("error does not say where the problem is: %q", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePrices accepted a catalogue that does not validate: %v", err)
		}
		for _, v := range priceFields(p) {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("price %v accepted", v)
			}
		}
		var obj map[string]any
		if sigsyaml.Unmarshal(workload, &obj) != nil || obj == nil {
			return
		}
		e, err := NewEstimator(EstimateOptions{Prices: p, Nodes: 3})
		if err != nil {
			t.Fatalf("an accepted catalogue builds no estimator: %v", err)
		}
		est, _, err := e.Estimate(obj)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) && !strings.Contains(err.Error(), "overflows") {
				t.Fatalf("estimate error without a field: %v", err)
			}
			return
		}
		m := est.Monthly
		for _, v := range []float64{m.CPU, m.RAM, m.GPU, m.Storage, m.Total, est.CPU, est.Memory, est.GPU, est.Storage} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("estimate of %s holds %v: %+v", est.Kind, v, est)
			}
		}
		if sum := m.CPU + m.RAM + m.GPU + m.Storage; math.Abs(sum-m.Total) > 1e-9*math.Max(1, m.Total) {
			t.Fatalf("parts %v do not add up to the total %v", sum, m.Total)
		}
		if s := Money(m.Total, p.Currency, Cents); s == "n/a" || strings.HasPrefix(s, "-") {
			t.Fatalf("Money(%v) = %q", m.Total, s)
		}
	})
}

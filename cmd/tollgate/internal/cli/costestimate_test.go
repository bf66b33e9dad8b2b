package cli

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// costManifests holds three workloads and a Service (not priced). With
// OpenCost's default prices (CPU 0.031611 per core-hour, RAM 0.004237 per
// GiB-hour, storage 0.00005479452 per GiB-hour) and 730 hours a month:
//
//	web:   2 × (0.5 × 0.031611 + 1 × 0.004237) × 730          =  29.26205
//	db:    3 × (1 × 0.031611 + 2 × 0.004237) × 730             =  87.78615
//	       + 3 × 10 GiB × 0.00005479452 × 730                  =   1.199999988
//	                                                           =  88.986149988
//	agent: 1 node × (0.1 × 0.031611 + 0.125 × 0.004237) × 730  =   2.69422925
//	total                                                      = 120.942429238
const costManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: app
        resources: {requests: {cpu: 500m, memory: 1Gi}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: pg
        resources: {requests: {cpu: 1, memory: 2Gi}}
      - name: exporter
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {resources: {requests: {storage: 10Gi}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: ops}
spec:
  template:
    spec:
      containers:
      - name: agent
        resources: {requests: {cpu: 100m, memory: 128Mi}}
`

func TestCostEstimateTable(t *testing.T) {
	file := write(t, t.TempDir(), "app.yaml", costManifests)
	code, out, errs := run(t, "", "cost", "estimate", "--no-mutate", file)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr %s", code, errs)
	}
	want := `KIND         NAME       REPLICAS  CPU  MEMORY  GPU  STORAGE  MONTHLY (USD)
Deployment   shop/web   2         1    2Gi     0    0        29.26
StatefulSet  shop/db    3         3    6Gi     0    30Gi     88.99
DaemonSet    ops/agent  1         0.1  128Mi   0    0        2.69
TOTAL                                                        120.94

A month is 730 hours; cpu, memory, gpu and storage are totals over replicas.
Notes:
  StatefulSet shop/db: container exporter has no cpu request: not charged
  StatefulSet shop/db: container exporter has no memory request: not charged
  DaemonSet ops/agent: a DaemonSet runs one pod per node: charged for 1 node
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if errs != "" {
		t.Errorf("stderr: %s", errs)
	}
}

type costJSON struct {
	Currency      string `json:"currency"`
	HoursPerMonth int    `json:"hoursPerMonth"`
	Workloads     []struct {
		File, Kind, Namespace, Name string
		Line                        int
		Replicas                    int64
		CPU                         float64 `json:"cpu"`
		Memory                      float64 `json:"memoryBytes"`
		Storage                     float64 `json:"storageBytes"`
		Monthly                     struct{ CPU, RAM, Storage, Total float64 }
		Notes                       []string
	} `json:"workloads"`
	Total struct{ Total float64 } `json:"total"`
}

func TestCostEstimateJSON(t *testing.T) {
	file := write(t, t.TempDir(), "app.yaml", costManifests)
	code, out, errs := run(t, "", "cost", "estimate", "--no-mutate", "--format", "json", "--nodes", "4", file)
	if code != ExitOK {
		t.Fatalf("exit %d, want 0; stderr %s", code, errs)
	}
	var r costJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON (%v):\n%s", err, out)
	}
	// With 4 nodes the agent costs 4 × 2.69422925 = 10.776917, and the
	// total 29.26205 + 88.986149988 + 10.776917 = 129.025116988, rounded
	// to a millionth: 129.025117.
	type row struct {
		Kind, Name string
		Line       int
		Replicas   int64
		Total      float64
	}
	var got []row
	for _, w := range r.Workloads {
		if w.File != file {
			t.Errorf("file %q, want %q", w.File, file)
		}
		got = append(got, row{w.Kind, w.Name, w.Line, w.Replicas, w.Monthly.Total})
	}
	want := []row{
		{"Deployment", "web", 1, 2, 29.26205},
		{"StatefulSet", "db", 17, 3, 88.98615},
		{"DaemonSet", "agent", 32, 4, 10.776917},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
	if r.Currency != "USD" || r.HoursPerMonth != 730 || r.Total.Total != 129.025117 {
		t.Errorf("currency %q, hours %d, total %v", r.Currency, r.HoursPerMonth, r.Total.Total)
	}
	db := r.Workloads[1]
	// 3 × 10 GiB of claims; 3 cores; 6 GiB
	if db.Storage != 30<<30 || db.CPU != 3 || db.Memory != 6<<30 || db.Monthly.Storage != 1.2 {
		t.Errorf("db: %+v", db)
	}
	// The same input gives the same bytes.
	_, again, _ := run(t, "", "cost", "estimate", "--no-mutate", "--format", "json", "--nodes", "4", file)
	if again != out {
		t.Error("JSON output differs between runs")
	}
}

// --prices replaces OpenCost's defaults: CPU 0.05 per core-hour, and nodes
// of instance type m5.xlarge charge 0.1.
//
//	std:  1 core × 0.05 × 730 = 36.5
//	big:  1 core × 0.1 × 730  = 73
//	spot: 1 core × 0.01 × 730 = 7.3
func TestCostEstimatePrices(t *testing.T) {
	dir := t.TempDir()
	prices := write(t, dir, "prices.yaml", `currencyCode: EUR
CPU: "0.05"
spotCPU: 0.01
overrides:
- nodeSelector: {node.kubernetes.io/instance-type: m5.xlarge}
  CPU: "0.1"
`)
	pod := func(name, selector string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n  nodeSelector: {" + selector + "}\n" +
			"  containers: [{name: c, resources: {requests: {cpu: 1, memory: 0}}}]\n---\n"
	}
	file := write(t, dir, "pods.yaml", pod("std", "")+pod("big", "node.kubernetes.io/instance-type: m5.xlarge")+
		pod("spot", "cloud.google.com/gke-spot: \"true\""))
	code, out, errs := run(t, "", "cost", "estimate", "--prices", prices, "-f", "json", file)
	if code != ExitOK {
		t.Fatalf("exit %d; stderr %s", code, errs)
	}
	var r costJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, w := range r.Workloads {
		got = append(got, w.Monthly.Total)
	}
	if diff := cmp.Diff([]float64{36.5, 73, 7.3}, got); diff != "" || r.Currency != "EUR" {
		t.Errorf("currency %s, costs (-want +got):\n%s", r.Currency, diff)
	}
}

// Bad input is an error naming the file and line, exit 2, and no table.
func TestCostEstimateBadInput(t *testing.T) {
	deploy := func(replicas, cpu string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: ` + replicas + `
  template:
    spec:
      containers:
      - name: app
        resources:
          requests:
            cpu: ` + cpu + "\n"
	}
	tests := []struct {
		name, text string
		want       []string // lines of stderr, after "tollgate: <file>:"
	}{
		{"malformed YAML", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n", []string{"3: invalid YAML"}},
		{"negative replicas", deploy("-2", "1"), []string{
			"5: Deployment shop/web: cannot estimate its cost: spec.replicas: -2 must not be negative"}},
		{"non-numeric replicas", deploy("many", "1"), []string{
			`5: Deployment shop/web: cannot estimate its cost: spec.replicas: is the string "many", want an integer`}},
		{"absurd cpu", deploy("1", "1e30"), []string{
			"12: Deployment shop/web: cannot estimate its cost: spec.template.spec.containers[0].resources.requests.cpu: 1e+30 cores is more than Kubernetes can schedule"}},
		{"unknown quantity", deploy("1", "2cores"), []string{
			`12: Deployment shop/web: cannot estimate its cost: spec.template.spec.containers[0].resources.requests.cpu: "2cores" is not a quantity`}},
		{"missing template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicas: 1\n", []string{
			"4: Deployment d: cannot estimate its cost: spec.template: missing: a Deployment needs a pod template"}},
		{"every error is reported", deploy("-1", "1") + "---\n" + deploy("1", "x"), []string{
			"5: Deployment shop/web: cannot estimate its cost: spec.replicas: -1 must not be negative",
			`25: Deployment shop/web: cannot estimate its cost: spec.template.spec.containers[0].resources.requests.cpu: "x" is not a quantity`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := write(t, t.TempDir(), "bad.yaml", tt.text)
			code, out, errs := run(t, "", "cost", "estimate", file)
			if code != ExitUsage {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout: %s", out)
			}
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("stderr:\n%s\nwant %d lines", errs, len(tt.want))
			}
			for i, w := range tt.want {
				if prefix := "tollgate: " + file + ":" + w; !strings.HasPrefix(lines[i], prefix) {
					t.Errorf("stderr line %d:\n%s\nwant it to start with\n%s", i, lines[i], prefix)
				}
			}
		})
	}
}

// A file over manifest's size limit is refused before it is parsed.
func TestCostEstimateOversized(t *testing.T) {
	file := filepath.Join(t.TempDir(), "huge.yaml")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: one byte past the limit, no disk space used.
	if err := f.Truncate(manifest.DefaultMaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, _, errs := run(t, "", "cost", "estimate", file)
	if code != ExitUsage || !strings.Contains(errs, file+": file is larger than the 64 MiB limit") {
		t.Errorf("exit %d, stderr %s", code, errs)
	}
}

func TestCostEstimateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := write(t, dir, "app.yaml", costManifests)
	badPrices := write(t, dir, "prices.yaml", "CPU: cheap\n")
	typo := write(t, dir, "typo.json", `{"cpu": "0.1"}`)
	big := write(t, dir, "big.yaml", "# "+strings.Repeat("x", 1<<20)+"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no path", []string{"cost", "estimate"}, "cost estimate needs at least one PATH"},
		{"format", []string{"cost", "estimate", "--format", "csv", file}, `--format "csv": want table or json`},
		{"nodes", []string{"cost", "estimate", "--nodes", "0", file}, "--nodes must be at least 1, got 0"},
		{"nodes not a number", []string{"cost", "estimate", "--nodes", "many", file}, `invalid argument "many" for "--nodes"`},
		{"prices missing", []string{"cost", "estimate", "--prices", filepath.Join(dir, "none.yaml"), file}, "--prices: open"},
		{"prices malformed", []string{"cost", "estimate", "--prices", badPrices, file},
			`--prices ` + badPrices + `: prices: CPU: "cheap" is not a number`},
		{"prices typo", []string{"cost", "estimate", "--prices", typo, file}, `prices: cpu: unknown key; did you mean "CPU"?`},
		{"prices too big", []string{"cost", "estimate", "--prices", big, file}, "is larger than 1 MiB"},
		{"missing path", []string{"cost", "estimate", filepath.Join(dir, "nowhere.yaml")}, "nowhere.yaml"},
		{"cost takes no arguments", []string{"cost", "web.yaml"}, `unknown command "web.yaml" for "tollgate cost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(t, "", tt.args...)
			if code != ExitUsage || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q, want 2 and %q", code, errs, tt.want)
			}
			if out != "" {
				t.Errorf("stdout: %s", out)
			}
		})
	}
}

func TestCostEstimateStdinAndEmpty(t *testing.T) {
	code, out, _ := run(t, costManifests, "cost", "estimate", "--no-mutate", "-")
	if code != ExitOK || !strings.Contains(out, "TOTAL") || !strings.Contains(out, "120.94") {
		t.Errorf("stdin: exit %d\n%s", code, out)
	}
	code, out, errs := run(t, "# nothing here\n", "cost", "estimate", "-")
	if code != ExitOK || !strings.Contains(errs, "no Kubernetes objects found") || !strings.Contains(out, "TOTAL") {
		t.Errorf("empty: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

// A name carrying terminal escapes is shown escaped.
func TestCostEstimateEscapes(t *testing.T) {
	code, out, _ := run(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: \"evil\\e[31m\"}\nspec: {containers: [{name: c}]}\n", "cost", "estimate", "-")
	if code != ExitOK || strings.Contains(out, "\x1b") || !strings.Contains(out, `evil\x1b[31m`) {
		t.Errorf("exit %d\n%q", code, out)
	}
}

// The parent command only shows its help.
func TestCostHelp(t *testing.T) {
	code, out, _ := run(t, "", "cost", "--help")
	if code != ExitOK || !strings.Contains(out, "estimate") || !strings.Contains(out, "Usage:") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// check --cost leaves the report as it is and prints the estimate to
// standard error; an object that cannot be priced is a problem (exit 2).
func TestCheckCost(t *testing.T) {
	file := manifests + "hardened.yaml"
	_, plain, _ := run(t, "", "check", "--format", "json", file)
	code, out, errs := run(t, "", "check", "--format", "json", "--cost", file)
	if code != ExitOK {
		t.Fatalf("exit %d; stderr %s", code, errs)
	}
	if out != plain {
		t.Errorf("--cost changed the report:\n%s\nwant\n%s", out, plain)
	}
	// checkout: 3 × (0.5 core × 0.031611 + 0.5 GiB × 0.004237) × 730
	// = 3 × 0.0179240 × 730 = 39.25356
	if !strings.Contains(errs, "Deployment  shop/checkout  3") || !strings.Contains(errs, "39.25") {
		t.Errorf("stderr has no estimate:\n%s", errs)
	}

	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - name: app
    image: registry.example.com/app@sha256:0000000000000000000000000000000000000000000000000000000000000000
    resources: {requests: {cpu: "-1"}}
`)
	if code, _, errs := checkJSON(t, "", "--cost", bad); code != ExitUsage {
		t.Errorf("exit %d, want 2; stderr %s", code, errs)
	}
	_, text, errs := run(t, "", "check", "--cost", bad)
	if !strings.Contains(text, bad+":8: Pod shop/p: cannot estimate its cost: spec.containers[0].resources.requests.cpu: -1 must not be negative") {
		t.Errorf("problem missing from the report:\n%s", text)
	}
	if !strings.Contains(errs, "1 object could not be priced and is left out of the total") {
		t.Errorf("stderr:\n%s", errs)
	}
}

// The table's money agrees with the JSON's, to the cent.
func TestCostTableMatchesJSON(t *testing.T) {
	file := write(t, t.TempDir(), "app.yaml", costManifests)
	_, out, _ := run(t, "", "cost", "estimate", "-f", "json", file)
	var r costJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	_, table, _ := run(t, "", "cost", "estimate", file)
	for _, w := range r.Workloads {
		cents := math.Round(w.Monthly.Total*100) / 100
		if !strings.Contains(table, finops.Amount(cents)) {
			t.Errorf("%s %s: %v not in the table", w.Kind, w.Name, cents)
		}
	}
}

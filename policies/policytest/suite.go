package policytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/manifest"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// Suite is a fixture suite: manifests under allowed/ must produce no finding
// of the suite's policies, manifests under denied/ at least one, and the
// cases pin the exact findings a fixture must produce.
type Suite struct {
	// Policies are the ids whose findings are judged; others are ignored.
	Policies []string `json:"policies"`
	// Config is a Tollgate config file, relative to the suite.
	Config string `json:"config,omitempty"`
	// Namespaces is a file of Namespace manifests giving namespace context.
	Namespaces string `json:"namespaces,omitempty"`
	// PodControllers runs every Pod fixture also wrapped in each pod
	// controller kind, with expected paths rewritten into the template.
	PodControllers bool `json:"podControllers,omitempty"`
	// ImageScans is a file of image scan summaries (image reference as
	// written to a vuln.Summary), relative to the suite: with it, every
	// fixture is judged as if a scanner were configured, each image's
	// summary in input.imageScans and an image the file does not list
	// pending, as the review core gives them.
	ImageScans string `json:"imageScans,omitempty"`
	// Inventory is a file of objects (multi-document YAML), relative to
	// the suite, that every fixture is judged with as input.inventory:
	// complete, as the audit builds it, unless InventoryPartial says it
	// is only some manifests, as check builds it.
	Inventory        string `json:"inventory,omitempty"`
	InventoryPartial bool   `json:"inventoryPartial,omitempty"`
	// Cases are exact expectations per fixture file.
	Cases []Case `json:"cases,omitempty"`
}

// Case is the exact set of findings a fixture must produce.
type Case struct {
	Fixture string   `json:"fixture"`
	Expect  []Expect `json:"expect"`
}

// Expect is one expected finding; empty fields match anything, Message is a
// substring.
type Expect struct {
	Policy  string `json:"policy,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message,omitempty"`
}

// LoadSuite reads and checks a suite.yaml.
func LoadSuite(dir string) (*Suite, error) {
	p := filepath.Join(dir, SuiteFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading suite: %w", err)
	}
	var s Suite
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(s.Policies) == 0 {
		return nil, fmt.Errorf("%s: policies: name at least one policy id", p)
	}
	for i, c := range s.Cases {
		if c.Fixture == "" {
			return nil, fmt.Errorf("%s: cases[%d].fixture: required", p, i)
		}
		if _, err := os.Stat(filepath.Join(dir, c.Fixture)); err != nil {
			return nil, fmt.Errorf("%s: cases[%d].fixture: %w", p, i, err)
		}
	}
	return &s, nil
}

// wrappers are the pod controller kinds a Pod fixture is wrapped in, with
// the prefix its paths gain. The engine has its own table; this one is
// written out independently so a mistake in either shows up as a failure.
var wrappers = []struct {
	apiVersion, kind, prefix string
	wrap                     func(name string, meta, tmpl map[string]any) map[string]any
}{
	{"apps/v1", "Deployment", "spec.template.", withSelector},
	{"apps/v1", "ReplicaSet", "spec.template.", withSelector},
	{"apps/v1", "StatefulSet", "spec.template.", func(n string, m, t map[string]any) map[string]any {
		s := withSelector(n, m, t)
		s["serviceName"] = n
		return s
	}},
	{"apps/v1", "DaemonSet", "spec.template.", withSelector},
	{"batch/v1", "Job", "spec.template.", func(_ string, _, t map[string]any) map[string]any {
		return map[string]any{"template": t}
	}},
	{"batch/v1", "CronJob", "spec.jobTemplate.spec.template.", func(_ string, _, t map[string]any) map[string]any {
		return map[string]any{"schedule": "0 * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": t}}}
	}},
	{"v1", "ReplicationController", "spec.template.", func(_ string, m, t map[string]any) map[string]any {
		return map[string]any{"selector": m["labels"], "template": t}
	}},
	{"v1", "PodTemplate", "template.", nil},
}

func withSelector(_ string, meta, tmpl map[string]any) map[string]any {
	return map[string]any{"selector": map[string]any{"matchLabels": meta["labels"]}, "template": tmpl}
}

// variant is a fixture object as judged: the original, or a Pod wrapped in
// a controller.
type variant struct {
	label  string
	object map[string]any
	prefix string
}

func variants(obj map[string]any, podControllers bool) []variant {
	out := []variant{{label: "", object: obj}}
	if !podControllers || obj["kind"] != "Pod" || obj["apiVersion"] != "v1" {
		return out
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	tmplMeta := map[string]any{}
	for _, k := range []string{"labels", "annotations"} {
		if v, ok := meta[k]; ok {
			tmplMeta[k] = v
		}
	}
	tmpl := map[string]any{"metadata": tmplMeta, "spec": obj["spec"]}
	for _, w := range wrappers {
		o := map[string]any{"apiVersion": w.apiVersion, "kind": w.kind, "metadata": meta}
		if w.wrap == nil {
			o["template"] = tmpl
		} else {
			o["spec"] = w.wrap(name, tmplMeta, tmpl)
		}
		out = append(out, variant{label: w.kind, object: o, prefix: w.prefix})
	}
	return out
}

func runSuite(ctx context.Context, opts Options, filter *regexp.Regexp, dir string, mods []policies.Module, data map[string]any, engines map[string]*policies.Engine, w io.Writer) (Summary, error) {
	var sum Summary
	s, err := LoadSuite(dir)
	if err != nil {
		return sum, err
	}
	engine, err := suiteEngine(ctx, opts, dir, s, mods, data, engines)
	if err != nil {
		return sum, err
	}
	known := map[string]bool{}
	for _, m := range engine.Policies() {
		known[m.ID] = true
	}
	for _, id := range s.Policies {
		if !known[id] {
			return sum, fmt.Errorf("%s: policies: no loaded policy has id %q", filepath.Join(dir, SuiteFile), id)
		}
	}
	namespaces := map[string]map[string]any{}
	owners := policies.Owners{}
	if s.Namespaces != "" {
		docs, err := manifest.Load([]string{filepath.Join(dir, s.Namespaces)}, nil, manifest.Options{})
		if err != nil {
			return sum, fmt.Errorf("suite %s: namespaces: %w", dir, err)
		}
		for _, d := range docs {
			if d.Kind() == "Namespace" {
				namespaces[d.Name()] = d.Object
			}
			owners.Add(d.Object) // the cluster's objects: controllers fixtures may name
		}
	}
	var scans map[string]*vuln.Summary
	if s.ImageScans != "" {
		if scans, err = loadImageScans(filepath.Join(dir, s.ImageScans)); err != nil {
			return sum, fmt.Errorf("suite %s: imageScans: %w", dir, err)
		}
	}
	var inventory *policies.Inventory
	if s.Inventory != "" {
		docs, err := manifest.Load([]string{filepath.Join(dir, s.Inventory)}, nil, manifest.Options{})
		if err != nil {
			return sum, fmt.Errorf("suite %s: inventory: %w", dir, err)
		}
		b := policies.NewInventory(!s.InventoryPartial)
		for _, d := range docs {
			ok, err := b.Add(d.Object)
			if err != nil {
				return sum, fmt.Errorf("suite %s: inventory: %s:%d: %w", dir, d.File, d.Line, err)
			}
			if !ok {
				return sum, fmt.Errorf("suite %s: inventory: %s:%d: %s %q is not of a kind an inventory holds", dir, d.File, d.Line, d.Kind(), d.Name())
			}
		}
		inventory = b.Build()
	}
	cases := map[string]*Case{}
	for i := range s.Cases {
		cases[filepath.Clean(s.Cases[i].Fixture)] = &s.Cases[i]
	}
	var fixtures []string
	for _, sub := range []string{"allowed", "denied"} {
		docs, err := filepath.Glob(filepath.Join(dir, sub, "*"))
		if err != nil {
			return sum, err
		}
		fixtures = append(fixtures, docs...)
	}
	if len(fixtures) == 0 {
		return sum, fmt.Errorf("suite %s: no fixtures under allowed/ or denied/", dir)
	}
	judged := map[string]bool{}
	for _, id := range s.Policies {
		judged[id] = true
	}
	name := strings.Join(s.Policies, ",")
	for _, file := range fixtures {
		rel, _ := filepath.Rel(dir, file)
		docs, err := manifest.Load([]string{file}, nil, manifest.Options{})
		if err != nil {
			return sum, fmt.Errorf("suite %s: %w", dir, err)
		}
		if len(docs) == 0 {
			return sum, fmt.Errorf("suite %s: %s holds no objects", dir, rel)
		}
		denied := strings.HasPrefix(filepath.ToSlash(rel), "denied/")
		c := cases[filepath.Clean(rel)]
		for _, doc := range docs {
			for _, v := range variants(doc.Object, s.PodControllers) {
				label := fmt.Sprintf("%s/%s", name, filepath.ToSlash(rel))
				if len(docs) > 1 {
					label += fmt.Sprintf("#%d", doc.Index)
				}
				if v.label != "" {
					label += " as " + v.label
				}
				if filter != nil && !filter.MatchString(label) {
					continue
				}
				ns := namespaces[doc.Namespace()]
				in := policies.ObjectInput(policies.SourceCheck, v.object, ns)
				owners.Resolve(in)
				in.Inventory = inventory
				if scans != nil {
					in.ImageScans = imageScans(engine, in, scans)
				}
				d := engine.Evaluate(ctx, in)
				var got []policies.Finding
				for _, f := range d.Findings {
					if judged[f.Policy] {
						got = append(got, f)
					}
				}
				var problems []string
				for _, e := range d.Errors {
					if judged[e.Policy] {
						problems = append(problems, e.Error())
					}
				}
				problems = append(problems, judge(got, c, denied, v.prefix)...)
				if len(problems) == 0 {
					sum.Passed++
					if opts.Verbose {
						fmt.Fprintf(w, "--- PASS: %s\n", label)
					}
					continue
				}
				sum.Failed++
				fmt.Fprintf(w, "--- FAIL: %s\n", label)
				for _, p := range problems {
					fmt.Fprintf(w, "    %s\n", p)
				}
			}
		}
	}
	return sum, nil
}

// loadImageScans reads a suite's image scan summaries: a map from image
// reference to summary, every summary with a known status.
func loadImageScans(p string) (map[string]*vuln.Summary, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var scans map[string]*vuln.Summary
	if err := yaml.UnmarshalStrict(b, &scans); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	for img, sum := range scans {
		if sum == nil {
			return nil, fmt.Errorf("%s: %q: empty summary (want at least status)", p, img)
		}
		switch sum.Status {
		case vuln.StatusScanned, vuln.StatusPending, vuln.StatusFailed, vuln.StatusStale:
		default:
			return nil, fmt.Errorf("%s: %q: status %q is not one of scanned, pending, failed, stale", p, img, sum.Status)
		}
	}
	if scans == nil {
		scans = map[string]*vuln.Summary{}
	}
	return scans, nil
}

// imageScans is input.imageScans for a fixture: the summary of each of its
// images, pending for an image the suite does not list.
func imageScans(e *policies.Engine, in *policies.Input, scans map[string]*vuln.Summary) map[string]any {
	imgs := e.Images(in)
	if len(imgs) == 0 {
		return nil
	}
	out := make(map[string]any, len(imgs))
	for _, c := range imgs {
		sum := scans[c.Image]
		if sum == nil {
			sum = &vuln.Summary{Status: vuln.StatusPending}
		}
		out[c.Image] = sum.Value()
	}
	return out
}

// suiteEngine builds (or reuses) the engine for a suite's config.
func suiteEngine(ctx context.Context, opts Options, dir string, s *Suite, mods []policies.Module, data map[string]any, engines map[string]*policies.Engine) (*policies.Engine, error) {
	key := ""
	var cfg *policies.Config
	if s.Config != "" {
		p := filepath.Join(dir, s.Config)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("suite %s: config: %w", dir, err)
		}
		sum := sha256.Sum256(b)
		key = hex.EncodeToString(sum[:])
		if cfg, err = policies.ParseConfig(b); err != nil {
			return nil, fmt.Errorf("suite %s: config %s: %w", dir, p, err)
		}
	}
	if e, ok := engines[key]; ok {
		return e, nil
	}
	e, err := policies.New(ctx, policies.Options{Modules: mods, Data: data, Config: cfg, Builtins: opts.Builtins})
	if err != nil {
		return nil, err
	}
	engines[key] = e
	return e, nil
}

// judge compares findings with the expectations and says what differs.
func judge(got []policies.Finding, c *Case, denied bool, prefix string) []string {
	if c == nil {
		switch {
		case denied && len(got) == 0:
			return []string{"denied fixture produced no finding"}
		case !denied && len(got) > 0:
			return []string{"allowed fixture produced findings:\n      " + describe(got)}
		}
		return nil
	}
	var problems []string
	left := slices.Clone(got)
	for _, e := range c.Expect {
		if e.Path != "" && prefix != "" {
			e.Path = prefix + e.Path
		}
		i := slices.IndexFunc(left, func(f policies.Finding) bool {
			return (e.Policy == "" || e.Policy == f.Policy) &&
				(e.Path == "" || e.Path == f.Path) &&
				strings.Contains(f.Message, e.Message)
		})
		if i < 0 {
			problems = append(problems, fmt.Sprintf("expected finding not produced: policy=%q path=%q message~%q", e.Policy, e.Path, e.Message))
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	if len(left) > 0 {
		problems = append(problems, "unexpected findings:\n      "+describe(left))
	}
	if len(problems) > 0 && len(got) > 0 {
		problems = append(problems, "all findings:\n      "+describe(got))
	}
	return problems
}

func describe(fs []policies.Finding) string {
	lines := make([]string, len(fs))
	for i, f := range fs {
		lines[i] = fmt.Sprintf("%s at %s: %s", f.Policy, f.Path, f.Message)
	}
	return strings.Join(lines, "\n      ")
}

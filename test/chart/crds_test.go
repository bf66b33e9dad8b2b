package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// gatekeeperCRD is the file of Gatekeeper's ConstraintTemplate CRD, which
// `make generate` copies from the constraint framework module.
const gatekeeperCRD = "templates.gatekeeper.sh_constrainttemplates.yaml"

// kyvernoCRDs is the folder of the Kyverno CRDs `make generate` copies
// from the Kyverno module, under charts/tollgate/crds.
const kyvernoCRDs = "kyverno"

// crdTemplate wraps a CRD that `make generate` wrote into the chart's
// template for it: installed while crds.enabled (and, for Gatekeeper's
// ConstraintTemplate, gatekeeper.installCRDs; for Kyverno's,
// kyverno.installCRDs), kept on uninstall while crds.keep, labelled like
// the release. file is the CRD's path under charts/tollgate/crds.
func crdTemplate(file string, generated []byte) ([]byte, error) {
	if bytes.Contains(generated, []byte("{{")) {
		return nil, errors.New("the CRD contains {{, which Helm would read as a template action")
	}
	const meta = "\nmetadata:\n  annotations:\n"
	if bytes.Count(generated, []byte(meta)) != 1 {
		return nil, fmt.Errorf("want exactly one %q block, as controller-gen writes", strings.TrimSpace(meta))
	}
	var b bytes.Buffer
	b.WriteString("{{- /* Generated from charts/tollgate/crds by `make generate`; do not edit. */ -}}\n")
	switch {
	case file == gatekeeperCRD:
		b.WriteString("{{- if and .Values.crds.enabled .Values.gatekeeper.installCRDs }}\n")
	case filepath.Dir(file) == kyvernoCRDs:
		b.WriteString("{{- if and .Values.crds.enabled .Values.kyverno.installCRDs }}\n")
	default:
		b.WriteString("{{- if .Values.crds.enabled }}\n")
	}
	b.Write(bytes.Replace(bytes.TrimPrefix(generated, []byte("---\n")), []byte(meta), []byte(meta+
		"    {{- if .Values.crds.keep }}\n"+
		"    helm.sh/resource-policy: keep\n"+
		"    {{- end }}\n"), 1))
	b.WriteString("{{- end }}\n")
	out := b.Bytes()
	// Labels go after the annotations, before the name.
	i := bytes.Index(out, []byte("\n  name: "))
	if i < 0 {
		return nil, errors.New("no metadata.name")
	}
	return slices.Concat(out[:i], []byte("\n  labels:\n    {{- include \"tollgate.labels\" . | nindent 4 }}"), out[i:]), nil
}

// TestCRDTemplates keeps charts/tollgate/templates/crds equal to the CRDs
// `make generate` writes into charts/tollgate/crds (make generate runs
// this test with -update to write them).
func TestCRDTemplates(t *testing.T) {
	root := repoRoot(t)
	src := filepath.Join(root, "charts", "tollgate", "crds")
	dst := filepath.Join(root, "charts", "tollgate", "templates", "crds")
	generated, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no generated CRDs in %s (%v): run make generate", src, err)
	}
	kyverno, err := filepath.Glob(filepath.Join(src, kyvernoCRDs, "*.yaml"))
	if err != nil || len(kyverno) == 0 {
		t.Fatalf("no Kyverno CRDs in %s (%v): run make generate", filepath.Join(src, kyvernoCRDs), err)
	}
	want := map[string][]byte{}
	for _, f := range slices.Concat(generated, kyverno) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(src, f)
		tpl, err := crdTemplate(rel, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want[filepath.Base(f)] = tpl
	}
	if *update {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		old, _ := filepath.Glob(filepath.Join(dst, "*.yaml"))
		for _, f := range old {
			if _, ok := want[filepath.Base(f)]; !ok {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	have, _ := filepath.Glob(filepath.Join(dst, "*.yaml"))
	var haveNames []string
	for _, f := range have {
		haveNames = append(haveNames, filepath.Base(f))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := want[filepath.Base(f)]; ok && !bytes.Equal(data, w) {
			t.Errorf("%s differs from the CRD make generate wrote; run make generate", f)
		}
	}
	var wantNames []string
	for name := range want {
		wantNames = append(wantNames, name)
	}
	slices.Sort(wantNames)
	if diff := cmp.Diff(wantNames, haveNames); diff != "" {
		t.Errorf("CRD templates (-generated +templates), run make generate:\n%s", diff)
	}
}

// TestGatekeeperCRD keeps the chart's ConstraintTemplate CRD equal to the
// one of the constraint framework module Tollgate builds with (make
// generate copies it).
func TestGatekeeperCRD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _, err := run(ctx, repoRoot(t), nil, "", "go", "list", "-m", "-f", "{{.Dir}}", "github.com/open-policy-agent/frameworks/constraint")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(strings.TrimSpace(dir), "config", "crds", gatekeeperCRD))
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile(filepath.Join(chartDir(t), "crds", gatekeeperCRD))
	if err != nil {
		t.Fatalf("%v: run make generate", err)
	}
	if !bytes.Equal(want, have) {
		t.Errorf("charts/tollgate/crds/%s differs from the constraint framework module's; run make generate", gatekeeperCRD)
	}
}

// TestKyvernoCRDs keeps the chart's Kyverno CRDs equal to those of the
// Kyverno module Tollgate builds with (make generate copies them), and
// makes sure they hold every kind the server loads.
func TestKyvernoCRDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, _, err := run(ctx, repoRoot(t), nil, "", "go", "list", "-m", "-f", "{{.Dir}}", "github.com/kyverno/kyverno")
	if err != nil {
		t.Fatal(err)
	}
	have, _ := filepath.Glob(filepath.Join(chartDir(t), "crds", kyvernoCRDs, "*.yaml"))
	var kinds []string
	for _, f := range have {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		group := "kyverno"
		if strings.HasPrefix(filepath.Base(f), "policies.kyverno.io_") {
			group = "policies.kyverno.io"
		}
		want, err := os.ReadFile(filepath.Join(strings.TrimSpace(dir), "config", "crds", group, filepath.Base(f)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(want, data) {
			t.Errorf("%s differs from the Kyverno module's; run make generate", f)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		kinds = append(kinds, crd.Spec.Group+"/"+crd.Spec.Names.Kind)
	}
	slices.Sort(kinds)
	want := []string{"kyverno.io/ClusterPolicy", "kyverno.io/Policy", "kyverno.io/PolicyException",
		"policies.kyverno.io/MutatingPolicy", "policies.kyverno.io/PolicyException", "policies.kyverno.io/ValidatingPolicy"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("Kyverno CRDs in the chart (-want +have), run make generate:\n%s", diff)
	}
}

// crdObjects reads the generated CRDs as objects, by name.
func crdObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "charts", "tollgate", "crds", "*.yaml"))
	out := map[string]map[string]any{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(data, &obj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[name(obj)] = obj
	}
	return out
}

// TestValuesSchemaEmbedsConfigSchema keeps the config schema inside the
// values schema equal to policies/config.schema.json, so a mistake under
// config: fails `helm install` instead of the server's start (-update
// copies it in).
func TestValuesSchemaEmbedsConfigSchema(t *testing.T) {
	root := repoRoot(t)
	valuesPath := filepath.Join(root, "charts", "tollgate", "values.schema.json")
	valuesData, err := os.ReadFile(valuesPath)
	if err != nil {
		t.Fatal(err)
	}
	configData, err := os.ReadFile(filepath.Join(root, "policies", "config.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(valuesData, &values); err != nil {
		t.Fatalf("%s: %v", valuesPath, err)
	}
	var have, want any
	if err := json.Unmarshal(values.Defs["config"], &have); err != nil {
		t.Fatalf("%s: $defs.config: %v", valuesPath, err)
	}
	if err := json.Unmarshal(configData, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, have); diff != "" {
		if !*update {
			t.Fatalf("$defs.config of %s differs from policies/config.schema.json (-want +have); run go test ./test/chart -run TestValuesSchemaEmbedsConfigSchema -update:\n%s", valuesPath, diff)
		}
		out, err := spliceConfigSchema(valuesData, configData)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(valuesPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// spliceConfigSchema replaces the value of $defs.config in the values schema
// with config, leaving the rest of the file as written.
func spliceConfigSchema(values, config []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(values))
	skip := func() error { var raw json.RawMessage; return dec.Decode(&raw) }
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.Join(errors.New("values schema: not an object"), err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if key != "$defs" {
			if err := skip(); err != nil {
				return nil, err
			}
			continue
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			return nil, errors.Join(errors.New("values schema: $defs is not an object"), err)
		}
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return nil, err
			}
			start := dec.InputOffset()
			if err := skip(); err != nil {
				return nil, err
			}
			if key != "config" {
				continue
			}
			end := dec.InputOffset()
			start += int64(bytes.IndexFunc(values[start:end], func(r rune) bool { return r == '{' }))
			var indented bytes.Buffer
			if err := json.Indent(&indented, config, "    ", "  "); err != nil {
				return nil, fmt.Errorf("policies/config.schema.json: %w", err)
			}
			return slices.Concat(values[:start], bytes.TrimSpace(indented.Bytes()), values[end:]), nil
		}
		break
	}
	return nil, errors.New("values schema: no $defs.config")
}

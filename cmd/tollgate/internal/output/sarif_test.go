package output

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tollgate-dev/tollgate/policies"
)

// sarifSchemaFile is the official OASIS SARIF 2.1.0 schema (errata 01),
// vendored so the test runs offline. It declares JSON Schema draft-04.
const (
	sarifSchemaFile = "testdata/sarif-schema-2.1.0.json"
	sarifSchemaURL  = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

// compileSARIFSchema compiles the vendored schema. The schema says it is
// draft-04 in "$schema"; the default draft is set to draft-04 as well so
// the test does not depend on that detection, and formats (uri,
// uri-reference, date-time) are asserted so a bad URI fails validation.
func compileSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(sarifSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("parsing %s: %v", sarifSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.AssertFormat()
	if err := c.AddResource(sarifSchemaURL, doc); err != nil {
		t.Fatalf("adding schema: %v", err)
	}
	sch, err := c.Compile(sarifSchemaURL)
	if err != nil {
		t.Fatalf("compiling schema: %v", err)
	}
	if sch.DraftVersion != 4 {
		t.Fatalf("schema compiled as draft %d, want draft-04", sch.DraftVersion)
	}
	return sch
}

func validateSARIF(t *testing.T, sch *jsonschema.Schema, data []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	return sch.Validate(inst)
}

func TestSARIFMatchesSchema(t *testing.T) {
	sch := compileSARIFSchema(t)
	tests := []struct {
		name   string
		report *Report
	}{
		{"full", fullReport()},
		{"clean", cleanReport()},
		{"empty", &Report{}},
		{"problems only", &Report{Problems: []Problem{{Message: "no policies loaded"}, {File: `C:\work\x.yaml`, Line: 2, Policy: "unknown-policy", Message: "boom"}}}},
		{"absolute and odd paths", &Report{Results: []Result{
			{File: "/abs/dir with space/x.yaml", Line: 1, Kind: "Pod", Name: "a", Finding: policies.Finding{Policy: "p", Action: policies.ActionEnforce, Severity: "weird"}},
			{File: `win\dir\y.yaml`, Kind: "Pod", Name: "b", Finding: policies.Finding{Policy: "p", Action: policies.ActionWarn}},
			{File: "./a:b#c?.yaml", Line: 3, Finding: policies.Finding{Policy: "q"}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateSARIF(t, sch, render(t, FormatSARIF, tt.report)); err != nil {
				t.Errorf("output does not match the SARIF 2.1.0 schema: %v", err)
			}
		})
	}
}

// TestSARIFSchemaRejectsBrokenDocuments shows the validation above can
// fail: each broken variant of a valid document must be rejected.
func TestSARIFSchemaRejectsBrokenDocuments(t *testing.T) {
	sch := compileSARIFSchema(t)
	valid := render(t, FormatSARIF, fullReport())
	if err := validateSARIF(t, sch, valid); err != nil {
		t.Fatalf("baseline document is invalid: %v", err)
	}
	run := func(d map[string]any) map[string]any { return d["runs"].([]any)[0].(map[string]any) }
	result := func(d map[string]any) map[string]any { return run(d)["results"].([]any)[0].(map[string]any) }
	rule := func(d map[string]any) map[string]any {
		return run(d)["tool"].(map[string]any)["driver"].(map[string]any)["rules"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name   string
		mutate func(d map[string]any)
	}{
		{"no version", func(d map[string]any) { delete(d, "version") }},
		{"wrong version", func(d map[string]any) { d["version"] = "2.0.0" }},
		{"unknown top-level property", func(d map[string]any) { d["extra"] = true }},
		{"unknown level", func(d map[string]any) { result(d)["level"] = "fatal" }},
		{"line zero", func(d map[string]any) {
			result(d)["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)["region"] = map[string]any{"startLine": 0}
		}},
		{"message without text", func(d map[string]any) { result(d)["message"] = map[string]any{} }},
		{"duplicate tags", func(d map[string]any) {
			rule(d)["properties"].(map[string]any)["tags"] = []any{"security", "security"}
		}},
		{"relative informationUri", func(d map[string]any) {
			run(d)["tool"].(map[string]any)["driver"].(map[string]any)["informationUri"] = "tollgate.dev"
		}},
		{"invocation without executionSuccessful", func(d map[string]any) {
			delete(run(d)["invocations"].([]any)[0].(map[string]any), "executionSuccessful")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(valid, &doc); err != nil {
				t.Fatal(err)
			}
			tt.mutate(doc)
			data, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateSARIF(t, sch, data); err == nil {
				t.Errorf("broken document passed validation")
			}
		})
	}
}

// sarifDoc is the part of a SARIF log the content tests read.
type sarifDoc struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name           string `json:"name"`
				Version        string `json:"version"`
				InformationURI string `json:"informationUri"`
				Rules          []struct {
					ID                   string `json:"id"`
					ShortDescription     struct{ Text string }
					Help                 struct{ Text, Markdown string }
					DefaultConfiguration struct{ Level string }
					Properties           struct {
						Tags             []string
						SecuritySeverity string `json:"security-severity"`
						Precision        string
					}
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Invocations []struct {
			ExecutionSuccessful        bool `json:"executionSuccessful"`
			ToolExecutionNotifications []struct {
				Level          string
				Message        struct{ Text string }
				AssociatedRule *struct {
					ID    string
					Index int
				}
			} `json:"toolExecutionNotifications"`
		} `json:"invocations"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct{ Text string }
			Locations []struct {
				PhysicalLocation struct {
					ArtifactLocation struct {
						URI       string `json:"uri"`
						URIBaseID string `json:"uriBaseId"`
					} `json:"artifactLocation"`
					Region struct{ StartLine int } `json:"region"`
				} `json:"physicalLocation"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			Properties          struct {
				Path     string
				Controls []string
			} `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

func decodeSARIF(t *testing.T, r *Report) sarifDoc {
	t.Helper()
	var doc sarifDoc
	if err := json.Unmarshal(render(t, FormatSARIF, r), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 1 {
		t.Fatalf("got %d runs, want 1", len(doc.Runs))
	}
	return doc
}

func TestSARIFContent(t *testing.T) {
	doc := decodeSARIF(t, fullReport())
	run := doc.Runs[0]

	t.Run("header", func(t *testing.T) {
		got := []string{doc.Schema, doc.Version, run.Tool.Driver.Name, run.Tool.Driver.Version, run.Tool.Driver.InformationURI}
		want := []string{"https://json.schemastore.org/sarif-2.1.0.json", "2.1.0", "tollgate", "1.2.3", "https://tollgate.dev"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("header (-want +got):\n%s", diff)
		}
	})

	t.Run("one rule per policy, sorted, including unlisted ones", func(t *testing.T) {
		var ids []string
		for _, r := range run.Tool.Driver.Rules {
			ids = append(ids, r.ID)
		}
		want := []string{"best-practice-latest-tag", "custom-slow", "namespace-labels", "pss-baseline-privileged", "pss-restricted-run-as-non-root", "resources-limits"}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("rule ids (-want +got):\n%s", diff)
		}
	})

	t.Run("rule metadata", func(t *testing.T) {
		r := run.Tool.Driver.Rules[3] // pss-baseline-privileged
		if r.ID != "pss-baseline-privileged" {
			t.Fatalf("rule 3 is %s", r.ID)
		}
		got := []string{r.ShortDescription.Text, r.DefaultConfiguration.Level, r.Properties.SecuritySeverity, r.Properties.Precision, strings.Join(r.Properties.Tags, ",")}
		want := []string{"Privileged containers are not allowed", "error", "9.0", "very-high", "security,cis,pss"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rule (-want +got):\n%s", diff)
		}
		for _, s := range []string{"Remove securityContext.privileged", "cis:5.2.1", "pss:baseline"} {
			if !strings.Contains(r.Help.Text, s) || !strings.Contains(r.Help.Markdown, s) {
				t.Errorf("help %+v lacks %q", r.Help, s)
			}
		}
	})

	t.Run("results", func(t *testing.T) {
		type row struct {
			Rule, Level, URI, Base string
			Line                   int
		}
		var got []row
		for _, res := range run.Results {
			if rule := run.Tool.Driver.Rules[res.RuleIndex].ID; rule != res.RuleID {
				t.Errorf("result for %s has ruleIndex %d, which is %s", res.RuleID, res.RuleIndex, rule)
			}
			loc := res.Locations[0].PhysicalLocation
			got = append(got, row{res.RuleID, res.Level, loc.ArtifactLocation.URI, loc.ArtifactLocation.URIBaseID, loc.Region.StartLine})
		}
		want := []row{
			{"pss-baseline-privileged", "error", "stdin", "%SRCROOT%", 9},
			{"pss-restricted-run-as-non-root", "warning", "deploy/web.yaml", "%SRCROOT%", 20},
			{"pss-baseline-privileged", "error", "deploy/web.yaml", "%SRCROOT%", 24},
			{"best-practice-latest-tag", "note", "deploy/web.yaml", "%SRCROOT%", 55},
			{"namespace-labels", "warning", "weird%20dir/a,b:c%25.yaml", "%SRCROOT%", 4},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
		if msg := run.Results[2].Message.Text; msg != `Deployment default/web: container "app" is privileged: <b>root</b> & 'host' access` {
			t.Errorf("message = %q", msg)
		}
		if diff := cmp.Diff([]string{"pss:baseline", "cis:5.2.1", "cis:5.2.2"}, run.Results[2].Properties.Controls); diff != "" {
			t.Errorf("controls (-want +got):\n%s", diff)
		}
	})

	t.Run("problems are notifications", func(t *testing.T) {
		inv := run.Invocations[0]
		if inv.ExecutionSuccessful {
			t.Error("executionSuccessful = true with problems")
		}
		if len(inv.ToolExecutionNotifications) != 3 {
			t.Fatalf("got %d notifications, want 3", len(inv.ToolExecutionNotifications))
		}
		n := inv.ToolExecutionNotifications[0] // custom-slow timed out, no file: sorts first
		if n.Level != "error" || n.AssociatedRule == nil || n.AssociatedRule.ID != "custom-slow" || n.AssociatedRule.Index != 1 {
			t.Errorf("notification = %+v", n)
		}
		if clean := decodeSARIF(t, cleanReport()); !clean.Runs[0].Invocations[0].ExecutionSuccessful || clean.Runs[0].Results == nil {
			t.Errorf("clean report: invocation %+v, results %v", clean.Runs[0].Invocations, clean.Runs[0].Results)
		}
	})
}

func TestSARIFFingerprints(t *testing.T) {
	base := Result{File: "deploy/web.yaml", Line: 24, DocumentLine: 1, Kind: "Deployment", Namespace: "default", Name: "web",
		Finding: policies.Finding{Policy: "p", Path: "spec.x", Message: "m"}}
	want := fingerprint(base)
	if len(want) != 64 {
		t.Fatalf("fingerprint %q is not a sha256 hex digest", want)
	}
	tests := []struct {
		name   string
		change func(r *Result)
		same   bool
	}{
		{"line moves", func(r *Result) { r.Line, r.DocumentLine = 90, 70 }, true},
		{"message wording changes", func(r *Result) { r.Message = "other" }, true},
		{"action changes", func(r *Result) { r.Action = policies.ActionWarn }, true},
		{"backslashes", func(r *Result) { r.File = `deploy\web.yaml` }, true},
		{"other file", func(r *Result) { r.File = "deploy/api.yaml" }, false},
		{"other kind", func(r *Result) { r.Kind = "StatefulSet" }, false},
		{"other namespace", func(r *Result) { r.Namespace = "prod" }, false},
		{"other name", func(r *Result) { r.Name = "api" }, false},
		{"other policy", func(r *Result) { r.Policy = "q" }, false},
		{"other path", func(r *Result) { r.Path = "spec.y" }, false},
		{"fields do not run together", func(r *Result) { r.Policy, r.Path = "ps", "pec.x" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.change(&r)
			if got := fingerprint(r); (got == want) != tt.same {
				t.Errorf("fingerprint same = %v, want %v", got == want, tt.same)
			}
		})
	}
}

func TestArtifactURI(t *testing.T) {
	tests := []struct {
		file, uri, base string
	}{
		{"deploy/web.yaml", "deploy/web.yaml", "%SRCROOT%"},
		{"./deploy/web.yaml", "deploy/web.yaml", "%SRCROOT%"},
		{`deploy\web.yaml`, "deploy/web.yaml", "%SRCROOT%"},
		{"../up.yaml", "../up.yaml", "%SRCROOT%"},
		{"<stdin>", "stdin", "%SRCROOT%"},
		{"dir with space/a#b?.yaml", "dir%20with%20space/a%23b%3F.yaml", "%SRCROOT%"},
		{"a:b.yaml", "./a:b.yaml", "%SRCROOT%"},
		{"100%.yaml", "100%25.yaml", "%SRCROOT%"},
		{"/abs/x.yaml", "file:///abs/x.yaml", ""},
		{`C:\work\x.yaml`, "file:///C:/work/x.yaml", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			uri, base := artifactURI(tt.file)
			if uri != tt.uri || base != tt.base {
				t.Errorf("artifactURI(%q) = %q, %q; want %q, %q", tt.file, uri, base, tt.uri, tt.base)
			}
		})
	}
}

func TestPascalCase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"pss-baseline-privileged", "PssBaselinePrivileged"},
		{"k8s.no_latest", "K8sNoLatest"},
		{"Already", "Already"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := pascalCase(tt.in); got != tt.want {
				t.Errorf("pascalCase(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

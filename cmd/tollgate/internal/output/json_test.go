package output

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestJSONShape(t *testing.T) {
	decode := func(t *testing.T, r *Report) map[string]any {
		t.Helper()
		var doc map[string]any
		if err := json.Unmarshal(render(t, FormatJSON, r), &doc); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		return doc
	}

	t.Run("empty fields keep their keys", func(t *testing.T) {
		doc := decode(t, &Report{Results: []Result{{File: "a.yaml", Finding: policies.Finding{Policy: "p"}}}})
		res := doc["results"].([]any)[0].(map[string]any)
		var keys []string
		for k := range res {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"action", "apiVersion", "controls", "documentLine", "file", "kind", "line", "message", "name", "namespace", "path", "policy", "remediation", "severity", "title"}
		if diff := cmp.Diff(want, keys); diff != "" {
			t.Errorf("result keys (-want +got):\n%s", diff)
		}
		if res["controls"] == nil {
			t.Error("controls is null, want []")
		}
	})

	t.Run("empty report has arrays", func(t *testing.T) {
		doc := decode(t, &Report{})
		for _, k := range []string{"results", "problems"} {
			if _, ok := doc[k].([]any); !ok {
				t.Errorf("%s = %#v, want an array", k, doc[k])
			}
		}
		if _, ok := doc["summary"].(map[string]any); !ok {
			t.Errorf("summary = %#v, want an object", doc["summary"])
		}
	})

	t.Run("round trip", func(t *testing.T) {
		var doc struct {
			Results  []jsonResult  `json:"results"`
			Problems []jsonProblem `json:"problems"`
			Summary  Summary       `json:"summary"`
		}
		r := fullReport()
		if err := json.Unmarshal(render(t, FormatJSON, r), &doc); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r.Summary(), doc.Summary); diff != "" {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
		var gotMsgs, wantMsgs []string
		for _, res := range doc.Results {
			gotMsgs = append(gotMsgs, res.Message)
		}
		for _, res := range sortedResults(r.Results) {
			wantMsgs = append(wantMsgs, res.Message)
		}
		if diff := cmp.Diff(wantMsgs, gotMsgs); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
		if len(doc.Problems) != len(r.Problems) {
			t.Errorf("got %d problems, want %d", len(doc.Problems), len(r.Problems))
		}
	})
}

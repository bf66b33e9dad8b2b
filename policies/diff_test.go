package policies

import (
	"encoding/json"
	"fmt"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/google/go-cmp/cmp"
)

// Diff: nil for equal objects; otherwise a patch that turns one into the
// other, in the same order every time (map keys are walked at random).
func TestDiff(t *testing.T) {
	from := map[string]any{"metadata": map[string]any{"name": "a"}, "spec": map[string]any{"list": []any{"x", "y", "z"}}}
	if p, err := Diff(from, from); err != nil || p != nil {
		t.Fatalf("equal objects: %v, %v", p, err)
	}
	labels := map[string]any{}
	for i := range 40 {
		labels[fmt.Sprintf("k%02d", i)] = "v"
	}
	to := map[string]any{"metadata": map[string]any{"name": "a", "labels": labels},
		"spec": map[string]any{"list": []any{"x", "y2"}, "new": true}}
	first, err := Diff(from, to)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := Diff(from, to)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Fatalf("a second diff differs:\n%s", diff)
		}
	}
	doc, _ := json.Marshal(from)
	ops, _ := json.Marshal(first)
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	got, err := patch.Apply(doc)
	if err != nil {
		t.Fatalf("applying %s: %v", ops, err)
	}
	want, _ := json.Marshal(to)
	if !jsonpatch.Equal(got, want) {
		t.Fatalf("patched %s, want %s", got, want)
	}
}

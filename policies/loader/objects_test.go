package loader_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/loader"
)

var requireTeam = map[string]any{
	"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
	"metadata": map[string]any{"name": "require-team"},
	"spec": map[string]any{"rules": []any{map[string]any{
		"name":  "team-label",
		"match": map[string]any{"any": []any{map[string]any{"resources": map[string]any{"kinds": []any{"Pod"}}}}},
		"validate": map[string]any{
			"failureAction": "Enforce", "message": "the label team is required",
			"pattern": map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": "?*"}}},
		},
	}}},
}

func teamException(namespace string) map[string]any {
	return map[string]any{
		"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
		"metadata": map[string]any{"name": "legacy", "namespace": namespace},
		"spec": map[string]any{
			"exceptions": []any{map[string]any{"policyName": "require-team", "ruleNames": []any{"team-label"}}},
			"match":      map[string]any{"any": []any{map[string]any{"resources": map[string]any{"kinds": []any{"Pod"}, "names": []any{"legacy-*"}}}}},
		},
	}
}

// The Kyverno PolicyExceptions among the objects count in the namespaces
// FileOptions designates, and in no other; the exceptions alone still
// give the plugin, whose warnings say they excuse nothing.
func TestFromObjectsKyvernoExceptions(t *testing.T) {
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "legacy-web", "namespace": "apps"},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": "app:1"}}},
	}
	waivedBy := func(opts loader.FileOptions, objs ...map[string]any) ([]string, []string) {
		t.Helper()
		var in []loader.Object
		for i, o := range objs {
			in = append(in, loader.Object{Source: "in.yaml:" + string(rune('1'+i)), Object: o})
		}
		plugins, err := loader.FromObjects(context.Background(), in, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(plugins) != 1 || plugins[0].Name != loader.PluginKyverno {
			t.Fatalf("plugins %v", plugins)
		}
		e := plugins[0].Evaluator.(*kyverno.Evaluator)
		var got, warnings []string
		for _, f := range e.Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, pod, nil)).Findings {
			by := "-"
			if f.Exception != nil {
				by = f.Exception.Namespace + "/" + f.Exception.Name
			}
			got = append(got, f.Policy+" waived by "+by)
		}
		for _, w := range e.Warnings() {
			warnings = append(warnings, w.String())
		}
		return got, warnings
	}
	got, warnings := waivedBy(loader.FileOptions{ExceptionNamespaces: []string{"platform-exceptions"}}, requireTeam, teamException("platform-exceptions"), pod)
	if diff := cmp.Diff([]string{"ClusterPolicy/require-team waived by platform-exceptions/legacy"}, got); diff != "" || len(warnings) != 0 {
		t.Errorf("designated: (-want +got)\n%s warnings %v", diff, warnings)
	}
	got, warnings = waivedBy(loader.FileOptions{}, requireTeam, teamException("platform-exceptions"), pod)
	if diff := cmp.Diff([]string{"ClusterPolicy/require-team waived by -"}, got); diff != "" || len(warnings) != 1 || !strings.Contains(warnings[0], "in.yaml:2: policy PolicyException/platform-exceptions/legacy: not honoured") {
		t.Errorf("none designated: (-want +got)\n%s warnings %v", diff, warnings)
	}
	got, warnings = waivedBy(loader.FileOptions{ExceptionNamespaces: []string{"platform-exceptions"}}, teamException("platform-exceptions"))
	if len(got) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], `policy "require-team" is not loaded`) {
		t.Errorf("exception alone: findings %v warnings %v", got, warnings)
	}
}

package webhook

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	core "github.com/tollgate-dev/tollgate/policies/review"
)

// servedMapper maps the built-in kinds Tollgate governs, as a cluster
// serves them.
func servedMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}, {Group: "apps", Version: "v1"}, {Group: "batch", Version: "v1"}})
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "Pod"}, {Version: "v1", Kind: "PodTemplate"}, {Version: "v1", Kind: "ReplicationController"},
		{Version: "v1", Kind: "PersistentVolumeClaim"}, {Version: "v1", Kind: "Namespace"},
		{Group: "apps", Version: "v1", Kind: "Deployment"}, {Group: "apps", Version: "v1", Kind: "ReplicaSet"},
		{Group: "apps", Version: "v1", Kind: "StatefulSet"}, {Group: "apps", Version: "v1", Kind: "DaemonSet"},
		{Group: "batch", Version: "v1", Kind: "Job"}, {Group: "batch", Version: "v1", Kind: "CronJob"},
	} {
		scope := meta.RESTScopeNamespace
		if gvk.Kind == "Namespace" {
			scope = meta.RESTScopeRoot
		}
		m.Add(gvk, scope)
	}
	return m
}

// registered lists "group/resource" of a configuration's rules.
func registered(rules []admissionregistrationv1.RuleWithOperations) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				out = append(out, g+"/"+res)
			}
		}
	}
	slices.Sort(out)
	return out
}

// The generated configurations register exactly the judged subresources
// of review.Subresources (docs/subresources.md), the validating webhook all
// of them, the mutating one those it mutates; claims reach both; and the
// chart's static configurations list the same.
func TestRegisteredSubresourcesFollowTheTable(t *testing.T) {
	f := newFixture(t, nil, nil)
	mwc, vwc, err := Configurations(f.reviewer.opts.State.Load(), servedMapper(), ConfigurationOptions{Name: "tollgate", URL: "https://127.0.0.1:9443"})
	if err != nil {
		t.Fatal(err)
	}
	validate, mutate := registered(vwc.Webhooks[0].Rules), registered(mwc.Webhooks[0].Rules)
	subresources := func(rs []string) []string {
		return slices.DeleteFunc(slices.Clone(rs), func(r string) bool { return !strings.Contains(strings.SplitN(r, "/", 2)[1], "/") })
	}
	var wantValidate, wantMutate []string
	for _, s := range core.Subresources {
		k := s.Group + "/" + s.Resource + "/" + s.Name
		if s.Judged {
			wantValidate = append(wantValidate, k)
			if s.Mutated {
				wantMutate = append(wantMutate, k)
			}
		}
	}
	slices.Sort(wantValidate)
	slices.Sort(wantMutate)
	if diff := cmp.Diff(wantValidate, subresources(validate)); diff != "" {
		t.Errorf("validating webhook's subresources (-table +registered):\n%s", diff)
	}
	if diff := cmp.Diff(wantMutate, subresources(mutate)); diff != "" {
		t.Errorf("mutating webhook's subresources (-table +registered):\n%s", diff)
	}
	for _, rs := range [][]string{validate, mutate} {
		if !slices.Contains(rs, "/persistentvolumeclaims") {
			t.Errorf("claims are not registered: %v", rs)
		}
	}

	chart, err := os.ReadFile("../charts/tollgate/templates/webhooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, validating, ok := strings.Cut(string(chart), "kind: ValidatingWebhookConfiguration")
	if !ok {
		t.Fatal("the chart has no ValidatingWebhookConfiguration")
	}
	for _, s := range core.Subresources {
		listed := strings.Contains(validating, " "+s.Resource+"/"+s.Name+",") || strings.Contains(validating, " "+s.Resource+"/"+s.Name+"]")
		if listed != s.Judged {
			t.Errorf("the chart's validating webhook lists %s/%s: %v, judged: %v", s.Resource, s.Name, listed, s.Judged)
		}
	}
}

// The webhook judges the subresources of the table and lets the others
// through unjudged, whatever a configuration sends it.
func TestSkipFollowsTheTable(t *testing.T) {
	f := newFixture(t, nil, nil)
	st := f.reviewer.opts.State.Load()
	for _, s := range core.Subresources {
		req := &admissionv1.AdmissionRequest{
			Operation: admissionv1.Update, Namespace: "shop", Name: "p",
			Kind:        metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:    metav1.GroupVersionResource{Group: s.Group, Version: "v1", Resource: s.Resource},
			SubResource: s.Name,
		}
		why := f.reviewer.skip(st, req)
		if (why == "") != s.Judged {
			t.Errorf("%s/%s/%s: skip says %q, judged %v", s.Group, s.Resource, s.Name, why, s.Judged)
		}
	}
}

// The chart's static match condition is the one Configurations registers
// for the default config with image policies assumed (the chart cannot see
// them), and the chart's validating webhook has none.
func TestChartMatchConditionFollowsTheGenerator(t *testing.T) {
	f := newFixture(t, nil, nil)
	st := *f.reviewer.opts.State.Load()
	st.Images = []core.ImagePolicy{{Name: "signed"}}
	want := MutateMatchConditions(&st)
	helpers, err := os.ReadFile("../charts/tollgate/templates/_helpers.tpl")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(helpers), `{{- define "tollgate.mutateCondition" -}}`+"\n")
	if !ok {
		t.Fatal(`the chart's helpers define no "tollgate.mutateCondition"`)
	}
	body, _, _ = strings.Cut(body, "\n{{- end -}}")
	if len(want) != 1 || body != want[0].Expression {
		t.Errorf("the chart's condition differs from the generator's:\nchart:     %s\ngenerator: %v", body, want)
	}
	chart, err := os.ReadFile("../charts/tollgate/templates/webhooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, validating, _ := strings.Cut(string(chart), "kind: ValidatingWebhookConfiguration")
	if strings.Contains(validating, "matchConditions") {
		t.Error("the chart's validating webhook has match conditions: validation must never skip")
	}
	if !strings.Contains(string(chart), "name: "+CompleteConditionName) {
		t.Errorf("the chart does not name its condition %s", CompleteConditionName)
	}
}

package loader_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// setCluster is a fake API server serving Tollgate's kinds, the
// ConstraintTemplate kind (no constraint kind: their CRDs are not
// created) and ValidatingAdmissionPolicies, holding objs.
func setCluster(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, apiextensionsv1.AddToScheme, admissionregistrationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "templates.gatekeeper.sh", Version: "v1", Kind: "ConstraintTemplate"}, meta.RESTScopeRoot)
	for _, k := range []string{"TollgatePolicy", "TollgateImagePolicy", "TollgateConfig", "TollgateProfile"} {
		mapper.Add(v1alpha1.GroupVersion.WithKind(k), meta.RESTScopeRoot)
	}
	mapper.Add(v1alpha1.GroupVersion.WithKind("TollgateException"), meta.RESTScopeNamespace)
	mapper.Add(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicy"), meta.RESTScopeRoot)
	mapper.Add(admissionregistrationv1.SchemeGroupVersion.WithKind("ValidatingAdmissionPolicyBinding"), meta.RESTScopeRoot)
	return fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(mapper).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.TollgatePolicy{}).Build()
}

// setObject is a policy set's object, named by its place in the set.
func setObject(source string, obj map[string]any) loader.Object {
	return loader.Object{Source: source, Object: obj}
}

const setPolicyRego = `# METADATA
# title: From the set
# custom:
#   id: corp-from-set
#   severity: low
package corp.fromset

violation contains {"msg": "the set denies it"} if { input.object.metadata.name == "denied" }
`

// setObjects are a template and its constraint (no CRD for its kind), a
// TollgatePolicy and a ValidatingAdmissionPolicy with its binding.
func setObjects() []loader.Object {
	return []loader.Object{
		setObject("oci/gk.yaml:1", template("teamrequiredlabels", "TeamRequiredLabels", labelsRego, 1).Object),
		setObject("oci/gk.yaml:20", constraint("TeamRequiredLabels", "services-need-alert-channel", "deny", "alert-channel").Object),
		setObject("oci/policy.yaml:1", map[string]any{
			"apiVersion": "tollgate.dev/v1alpha1", "kind": "TollgatePolicy",
			"metadata": map[string]any{"name": "from-set"},
			"spec":     map[string]any{"rego": setPolicyRego},
		}),
		setObject("oci/vap.yaml:1", map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
			"metadata": map[string]any{"name": "services-need-port"},
			"spec": map[string]any{
				"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
					"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"CREATE", "UPDATE"}, "resources": []any{"services"},
				}}},
				"validations": []any{map[string]any{"expression": "has(object.spec) && has(object.spec.ports)", "message": "a Service needs ports"}},
			},
		}),
		setObject("oci/vap.yaml:20", map[string]any{
			"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
			"metadata": map[string]any{"name": "services-need-port"},
			"spec":     map[string]any{"policyName": "services-need-port", "validationActions": []any{"Deny"}},
		}),
	}
}

// inForce lists the state's policy ids, sorted.
func inForce(st *review.Set) []string {
	var out []string
	for _, m := range st.Policies() {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

func setLoader(t *testing.T, c client.Client, state *review.Holder, opts loader.Options) *loader.Loader {
	t.Helper()
	gk := format(t, loader.GatekeeperOptions{})
	opts.Client, opts.State = c, state
	opts.Formats = []loader.Format{gk, loader.NewVAPFormat(loader.VAPOptions{})}
	if opts.Base == nil {
		opts.Base = []policies.Module{basePolicy("base", "corp.base")}
	}
	l, err := loader.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSetObjects: a policy set's objects are enforced beside the
// cluster's — a constraint whose kind has no CRD, a TollgatePolicy, a
// ValidatingAdmissionPolicy — their status is never written, the cluster's
// objects still load, and the policy-set digest names the set.
func TestSetObjects(t *testing.T) {
	ctx := context.Background()
	clusterPolicy := &v1alpha1.TollgatePolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "from-cluster", UID: "uid-cluster", Generation: 1},
		Spec:       v1alpha1.TollgatePolicySpec{Rego: strings.NewReplacer("corp-from-set", "corp-from-cluster", "corp.fromset", "corp.fromcluster").Replace(setPolicyRego)},
	}
	c := setCluster(t, clusterPolicy)
	state := &review.Holder{}
	l := setLoader(t, c, state, loader.Options{BaseObjects: setObjects(), BaseDigest: "sha256:1111"})
	if _, err := l.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"TeamRequiredLabels/services-need-alert-channel", "ValidatingAdmissionPolicy/services-need-port", "base", "corp-from-cluster", "corp-from-set"}
	if diff := cmp.Diff(want, inForce(state.Load())); diff != "" {
		t.Errorf("policies in force (-want +got):\n%s", diff)
	}
	var gkPlugin review.Plugin
	for _, p := range state.Load().Plugins {
		if p.Name == loader.PluginGatekeeper {
			gkPlugin = p
		}
	}
	if diff := cmp.Diff([]string{"TeamRequiredLabels/services-need-alert-channel: label alert-channel is missing"}, messages(gkPlugin, service(nil))); diff != "" {
		t.Errorf("the set's constraint judges (-want +got):\n%s", diff)
	}
	// The set's ValidatingAdmissionPolicy binding is judged at admission
	// by Tollgate (the API server never sees it), by a plugin that runs
	// nowhere else: the VAP plugin judges it in the audit and checks.
	var setVAP *review.Plugin
	for i, p := range state.Load().Plugins {
		if p.Name == loader.PluginVAP+"-set" {
			setVAP = &state.Load().Plugins[i]
		}
	}
	if setVAP == nil {
		t.Fatal("no plugin judges the set's ValidatingAdmissionPolicy at admission")
	}
	if !slices.Equal(setVAP.SkipSources, []string{policies.SourceAudit, policies.SourceCheck}) {
		t.Errorf("the set's VAP plugin skips %v", setVAP.SkipSources)
	}
	atAdmission := service(nil)
	atAdmission.Source = policies.SourceAdmission
	if got := messages(*setVAP, atAdmission); len(got) != 1 || !strings.Contains(got[0], "a Service needs ports") {
		t.Errorf("the set's VAP at admission: %v", got)
	}
	// The cluster's TollgatePolicy has its status; the set's is not in
	// the cluster and was not created by a status write.
	var got v1alpha1.TollgatePolicy
	if err := c.Get(ctx, client.ObjectKey{Name: "from-cluster"}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("the cluster's TollgatePolicy status: %+v", got.Status)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "from-set"}, &got); err == nil {
		t.Error("the set's TollgatePolicy is in the cluster")
	}

	// The digest folds the set's in: another set digest, another
	// policy-set digest, for the same modules.
	first := state.Load().PolicySet
	if err := l.SetBase(ctx, loader.Base{Modules: []policies.Module{basePolicy("base", "corp.base")}, Objects: setObjects(), Digest: "sha256:2222"}); err != nil {
		t.Fatal(err)
	}
	if second := state.Load().PolicySet; second == first || !strings.HasPrefix(second, "sha256:") {
		t.Errorf("policy-set digest %s after a new set digest, was %s", second, first)
	}
	if diff := cmp.Diff(want, inForce(state.Load())); diff != "" {
		t.Errorf("policies in force after the same objects again (-want +got):\n%s", diff)
	}
}

// TestSetObjectsRefused: a new set whose template does not compile, or
// whose TollgatePolicy does not, is refused whole: SetBase fails naming
// the object and the last good set stays in force, config included.
func TestSetObjectsRefused(t *testing.T) {
	ctx := context.Background()
	state := &review.Holder{}
	cfg, err := policies.ParseConfig([]byte("policies:\n  base: {action: warn}\n"))
	if err != nil {
		t.Fatal(err)
	}
	good := loader.Base{Modules: []policies.Module{basePolicy("base", "corp.base")}, Objects: setObjects(), Digest: "sha256:1111", Config: cfg}
	// Every set published, in order: a refused one never is, not even
	// for a moment.
	var published [][]string
	l := setLoader(t, setCluster(t), state, loader.Options{OnLoad: func(_ context.Context, st *review.Set) {
		published = append(published, inForce(st))
	}})
	if err := l.SetBase(ctx, good); err != nil {
		t.Fatal(err)
	}
	before := state.Load()
	if got := before.Engine.Config().Policies["base"].Action; got != policies.ActionWarn {
		t.Fatalf("the set's config is not in force: base action %q", got)
	}
	for _, tc := range []struct {
		name   string
		broken func(objs []loader.Object)
		want   string
	}{
		{"a template whose Rego does not compile", func(objs []loader.Object) {
			objs[0] = setObject("oci/gk.yaml:1", template("teamrequiredlabels", "TeamRequiredLabels", strings.Replace(labelsRego, "not input", "not input[", 1), 1).Object)
		}, "ConstraintTemplate teamrequiredlabels: spec.targets[0].rego"},
		{"a TollgatePolicy that does not compile", func(objs []loader.Object) {
			objs[2].Object["spec"] = map[string]any{"rego": "package corp.fromset\n\nviolation contains x if { x := nope(1) }\n"}
		}, "TollgatePolicy from-set: "},
		{"a ValidatingAdmissionPolicy whose CEL does not compile", func(objs []loader.Object) {
			objs[3].Object["spec"].(map[string]any)["validations"] = []any{map[string]any{"expression": "object.spec.ports.((", "message": "broken"}}
		}, "ValidatingAdmissionPolicy services-need-port: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := setObjects()
			tc.broken(objs)
			published = nil
			err := l.SetBase(ctx, loader.Base{Modules: good.Modules, Objects: objs, Digest: "sha256:3333", Config: policies.DefaultConfig()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetBase: %v, want an error naming %q", err, tc.want)
			}
			after := state.Load()
			if after.PolicySet != before.PolicySet {
				t.Errorf("policy-set digest %s, want the last good set's %s", after.PolicySet, before.PolicySet)
			}
			if diff := cmp.Diff(inForce(before), inForce(after)); diff != "" {
				t.Errorf("policies in force (-last good +now):\n%s", diff)
			}
			for i, p := range published {
				if diff := cmp.Diff(inForce(before), p); diff != "" {
					t.Errorf("set %d published during the refused SetBase (-last good +published):\n%s", i, diff)
				}
			}
			if got := after.Engine.Config().Policies["base"].Action; got != policies.ActionWarn {
				t.Errorf("the last good set's config is not in force: base action %q", got)
			}
			if err := loader.CheckBase(ctx, loader.Base{Modules: good.Modules, Objects: objs}, loader.CheckOptions{Scheme: setCluster(t).Scheme()}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckBase: %v, want an error naming %q", err, tc.want)
			}
		})
	}
	if err := loader.CheckBase(ctx, good, loader.CheckOptions{Scheme: setCluster(t).Scheme()}); err != nil {
		t.Errorf("CheckBase of the good set: %v", err)
	}
}

// TestSetObjectsCRDNotWritten: the leader cannot create the CRD of a set
// template's constraint kind; the set still loads (Tollgate judges its
// constraints without the CRD) and the failure is only logged.
func TestSetObjectsCRDNotWritten(t *testing.T) {
	ctx := context.Background()
	c := setCluster(t)
	denied := interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		return errors.New("forbidden")
	}}
	crds := interceptor.NewClient(c, denied)
	gk := format(t, loader.GatekeeperOptions{CreateConstraintCRDs: true, CRDs: crds})
	state := &review.Holder{}
	l, err := loader.New(loader.Options{Client: c, State: state, Formats: []loader.Format{gk},
		Base: []policies.Module{basePolicy("base", "corp.base")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetBase(ctx, loader.Base{Modules: []policies.Module{basePolicy("base", "corp.base")}, Objects: setObjects()[:2], Digest: "sha256:1111"}); err != nil {
		t.Fatalf("a set refused for a CRD it could not write: %v", err)
	}
	if diff := cmp.Diff([]string{"TeamRequiredLabels/services-need-alert-channel", "base"}, inForce(state.Load())); diff != "" {
		t.Errorf("policies in force (-want +got):\n%s", diff)
	}
}

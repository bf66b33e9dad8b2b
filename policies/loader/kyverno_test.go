package loader_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/review"
)

const requireTier = `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: require-tier, uid: uid-require-tier, generation: 1}
spec:
  validationFailureAction: Enforce
  rules:
  - name: tier-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "label tier is required"
      pattern: {metadata: {labels: {tier: "?*"}}}
`

const smallConfigMaps = `
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: small-configmaps, uid: uid-small, generation: 1}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  validations:
  - expression: "!has(object.data) || size(object.data) <= 2"
    message: "at most 2 keys"
`

const allowedTiers = `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: allowed-tiers, uid: uid-allowed-tiers, generation: 1}
spec:
  validationFailureAction: Enforce
  rules:
  - name: known-tier
    match: {any: [{resources: {kinds: [Pod]}}]}
    context:
    - name: tiers
      configMap: {name: tiers, namespace: platform}
    validate:
      message: "tier {{ request.object.metadata.labels.tier }} is not allowed"
      deny:
        conditions:
          any:
          - key: "{{ request.object.metadata.labels.tier || '' }}"
            operator: AnyNotIn
            value: "{{ tiers.data.allowed | split(@, ',') }}"
`

const addTeam = `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: add-contact, uid: uid-add-contact, generation: 1}
spec:
  rules:
  - name: contact
    match: {any: [{resources: {kinds: [ConfigMap]}}]}
    mutate:
      patchStrategicMerge:
        metadata: {annotations: {+(contact): platform}}
`

// kyvernoObject decodes a policy written in YAML.
func kyvernoObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

// kyvernoCluster is a fake API server that serves the Kyverno kinds when
// served is true (their CRDs are installed), and ConfigMaps.
func kyvernoCluster(t *testing.T, served bool, funcs interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	if served {
		for _, gvk := range []schema.GroupVersionKind{
			{Group: "kyverno.io", Version: "v1", Kind: "ClusterPolicy"},
			{Group: "policies.kyverno.io", Version: "v1", Kind: "ValidatingPolicy"},
			{Group: "policies.kyverno.io", Version: "v1", Kind: "MutatingPolicy"},
		} {
			mapper.Add(gvk, meta.RESTScopeRoot)
		}
		for _, gvk := range []schema.GroupVersionKind{
			{Group: "kyverno.io", Version: "v1", Kind: "Policy"},
			{Group: "kyverno.io", Version: "v2", Kind: "PolicyException"},
			{Group: "policies.kyverno.io", Version: "v1", Kind: "PolicyException"},
		} {
			mapper.Add(gvk, meta.RESTScopeNamespace)
		}
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(mapper).WithObjects(objs...).WithInterceptorFuncs(funcs).Build()
}

func pod(source string, labels map[string]any) *policies.Input {
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "web", "namespace": "shop", "labels": labels},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "nginx:1.27"}}}}
	return policies.ObjectInput(source, obj, map[string]any{"metadata": map[string]any{"name": "shop"}})
}

func configMapInput(source string, keys int) *policies.Input {
	data := map[string]any{}
	for _, k := range []string{"a", "b", "c", "d"}[:keys] {
		data[k] = "v"
	}
	obj := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "settings", "namespace": "shop"}, "data": data}
	return policies.ObjectInput(source, obj, map[string]any{"metadata": map[string]any{"name": "shop"}})
}

func kyvernoIDs(p review.Plugin) []string {
	var out []string
	for _, m := range p.Evaluator.(review.Catalogue).Policies() {
		out = append(out, m.ID)
	}
	return out
}

// findings lists "policy: message" for each finding.
func findings(p review.Plugin, in *policies.Input) []string {
	var out []string
	d := p.Evaluator.Evaluate(context.Background(), in)
	for _, f := range d.Findings {
		out = append(out, f.Policy+": "+f.Message)
	}
	for _, e := range d.Errors {
		out = append(out, e.Policy+": error: "+e.Err.Error())
	}
	return out
}

func TestKyvernoFormatWithoutKyvernoCRDs(t *testing.T) {
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	p, probs := f.Load(context.Background(), kyvernoCluster(t, false, interceptor.Funcs{}))
	if len(probs) != 0 || len(kyvernoIDs(p)) != 0 || p.Name != loader.PluginKyverno {
		t.Fatalf("no CRDs: plugin %q with %v, problems %v", p.Name, kyvernoIDs(p), problems(probs))
	}
	if got := findings(p, pod(policies.SourceAdmission, nil)); len(got) != 0 {
		t.Errorf("an empty plugin found %v", got)
	}
	if _, ok := p.Evaluator.(review.Mutator); ok {
		t.Error("a plugin without mutate rules is a Mutator: the mutating webhook would lose its match conditions")
	}
}

// TestKyvernoFormatLoadsAndKeepsTheLastGood: policies from the cluster
// judge; a policy whose CEL does not compile is a problem naming it while
// the others judge; a new version that does not load keeps the last good
// one in force; an unchanged cluster costs no compile.
func TestKyvernoFormatLoadsAndKeepsTheLastGood(t *testing.T) {
	ctx := context.Background()
	broken := kyvernoObject(t, strings.Replace(strings.Replace(smallConfigMaps, "small-configmaps", "broken", 1),
		`"!has(object.data) || size(object.data) <= 2"`, `"size(object.data) + 'x'"`, 1))
	broken.SetUID("uid-broken")
	c := kyvernoCluster(t, true, interceptor.Funcs{}, kyvernoObject(t, requireTier), kyvernoObject(t, smallConfigMaps), broken)
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	p, probs := f.Load(ctx, c)
	if diff := cmp.Diff([]string{"ClusterPolicy/require-tier", "ValidatingPolicy/small-configmaps"}, kyvernoIDs(p)); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
	got := problems(probs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "ValidatingPolicy broken: ") || !strings.Contains(got[0], "validations[0]") {
		t.Errorf("problems: %q, want one naming ValidatingPolicy broken and its validation", got)
	}
	if diff := cmp.Diff([]string{"ClusterPolicy/require-tier: tier-label: validation error: label tier is required. rule tier-label failed at path /metadata/labels/"},
		findings(p, pod(policies.SourceAdmission, nil))); diff != "" {
		t.Errorf("pod findings (-want +got):\n%s", diff)
	}
	if got := findings(p, configMapInput(policies.SourceAdmission, 3)); len(got) != 1 || !strings.Contains(got[0], "at most 2 keys") {
		t.Errorf("configmap findings: %q", got)
	}

	// Unchanged: the same evaluator, no compile.
	again, _ := f.Load(ctx, c)
	if again.Evaluator != p.Evaluator {
		t.Error("an unchanged cluster compiled the policies again")
	}

	// A new generation of require-tier that does not load: generation 1
	// stays in force and the problem says so.
	var cur unstructured.Unstructured
	cur.SetGroupVersionKind(schema.GroupVersionKind{Group: "kyverno.io", Version: "v1", Kind: "ClusterPolicy"})
	if err := c.Get(ctx, client.ObjectKey{Name: "require-tier"}, &cur); err != nil {
		t.Fatal(err)
	}
	rules, _, _ := unstructured.NestedSlice(cur.Object, "spec", "rules")
	rules[0].(map[string]any)["validate"].(map[string]any)["message"] = "{{ request.object.metadata.labels.| }}"
	if err := unstructured.SetNestedSlice(cur.Object, rules, "spec", "rules"); err != nil {
		t.Fatal(err)
	}
	cur.SetGeneration(2)
	if err := c.Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	p2, probs := f.Load(ctx, c)
	got = problems(probs)
	if !slices.ContainsFunc(got, func(s string) bool {
		return strings.HasPrefix(s, "ClusterPolicy require-tier: generation 2 does not load; generation 1 stays in force: ")
	}) {
		t.Errorf("problems: %q, want require-tier's generation 2 reported with generation 1 in force", got)
	}
	if got := findings(p2, pod(policies.SourceAdmission, nil)); len(got) != 1 || !strings.Contains(got[0], "label tier is required") {
		t.Errorf("generation 1 is not in force: %q", got)
	}

	// Deleted: it stops judging.
	if err := c.Delete(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	p3, _ := f.Load(ctx, c)
	if got := findings(p3, pod(policies.SourceAdmission, nil)); len(got) != 0 {
		t.Errorf("a deleted policy still judges: %q", got)
	}
}

// TestKyvernoFormatListingFails: a cluster hiccup keeps what is in force.
func TestKyvernoFormatListingFails(t *testing.T) {
	ctx := context.Background()
	fail := false
	c := kyvernoCluster(t, true, interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if fail {
			return errors.New("etcd is away")
		}
		return c.List(ctx, list, opts...)
	}}, kyvernoObject(t, requireTier))
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	p, _ := f.Load(ctx, c)
	fail = true
	p2, _ := f.Load(ctx, c)
	if p2.Evaluator != p.Evaluator || len(findings(p2, pod(policies.SourceAudit, nil))) != 1 {
		t.Errorf("a failed listing dropped the policies in force: %v", kyvernoIDs(p2))
	}
}

// TestKyvernoFormatReadsNamedConfigMaps: a configMap context entry reads
// the ConfigMap it names, and a change of it judges the next load.
func TestKyvernoFormatReadsNamedConfigMaps(t *testing.T) {
	ctx := context.Background()
	tiers := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "tiers", Namespace: "platform"}, Data: map[string]string{"allowed": "frontend,backend"}}
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "platform"}, Data: map[string]string{"x": "y"}}
	// A ConfigMap named by a variable is read per request by Kyverno,
	// which an offline engine cannot: it names none.
	variable := kyvernoObject(t, strings.NewReplacer("allowed-tiers", "per-namespace", "uid-allowed-tiers", "uid-per-namespace",
		"{name: tiers, namespace: platform}", "{name: '{{ request.namespace }}-tiers', namespace: platform}").Replace(allowedTiers))
	var read []string
	c := kyvernoCluster(t, true, interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*corev1.ConfigMap); ok {
			read = append(read, key.String())
		}
		return c.Get(ctx, key, obj, opts...)
	}}, kyvernoObject(t, allowedTiers), variable, tiers, other)
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	p, probs := f.Load(ctx, c)
	if len(probs) != 0 {
		t.Fatalf("problems: %q", problems(probs))
	}
	if diff := cmp.Diff([]string{"platform/tiers"}, read); diff != "" {
		t.Errorf("ConfigMaps read (-want +got):\n%s", diff)
	}
	judged := func(p review.Plugin, tier string) []string {
		var out []string
		for _, f := range findings(p, pod(policies.SourceAdmission, map[string]any{"tier": tier})) {
			if !strings.HasPrefix(f, "ClusterPolicy/per-namespace: error: ") || !strings.Contains(f, "shop-tiers") {
				out = append(out, f) // the variable's ConfigMap is missing, always
			}
		}
		return out
	}
	if got := findings(p, pod(policies.SourceAdmission, map[string]any{"tier": "backend"})); len(got) != 1 || !strings.Contains(got[0], `"platform/shop-tiers" not found`) {
		t.Errorf("the policy reading a ConfigMap named by a variable: %q, want its rule to fail naming platform/shop-tiers", got)
	}
	if got := judged(p, "backend"); len(got) != 0 {
		t.Errorf("an allowed tier: %q", got)
	}
	if got := judged(p, "batch"); len(got) != 1 || !strings.Contains(got[0], "tier batch is not allowed") {
		t.Errorf("a tier the ConfigMap does not allow: %q", got)
	}
	tiers.Data["allowed"] = "frontend,backend,batch"
	if err := c.Update(ctx, tiers); err != nil {
		t.Fatal(err)
	}
	p, _ = f.Load(ctx, c)
	if got := judged(p, "batch"); len(got) != 0 {
		t.Errorf("the ConfigMap's change was not read: %q", got)
	}
}

// TestKyvernoFormatBesideKyverno: with Kyverno's admission controller
// beside, only the policies annotated for Tollgate judge at admission;
// every policy judges in the audit.
func TestKyvernoFormatBesideKyverno(t *testing.T) {
	ctx := context.Background()
	owned := kyvernoObject(t, strings.Replace(smallConfigMaps, "name: small-configmaps,", "name: small-configmaps, annotations: {tollgate.dev/engine: tollgate},", 1))
	off := kyvernoObject(t, strings.Replace(requireTier, "validationFailureAction: Enforce", "validationFailureAction: Enforce\n  admission: false", 1))
	for _, tc := range []struct {
		name   string
		beside bool
		objs   []client.Object
		// want: findings at admission and in the audit, for a Pod and a
		// ConfigMap of 3 keys.
		admission, audit int
	}{
		{"alone", false, []client.Object{kyvernoObject(t, requireTier), kyvernoObject(t, smallConfigMaps)}, 2, 2},
		{"beside", true, []client.Object{kyvernoObject(t, requireTier), owned}, 1, 2},
		{"annotated kyverno", false, []client.Object{kyvernoObject(t, strings.Replace(requireTier, "generation: 1}", "generation: 1, annotations: {tollgate.dev/engine: kyverno}}", 1)), kyvernoObject(t, smallConfigMaps)}, 1, 2},
		{"admission off", false, []client.Object{off, kyvernoObject(t, smallConfigMaps)}, 1, 2},
		{"background off", false, []client.Object{kyvernoObject(t, strings.Replace(requireTier, "validationFailureAction: Enforce", "validationFailureAction: Enforce\n  background: false", 1)),
			kyvernoObject(t, strings.Replace(smallConfigMaps, "validationActions: [Deny]", "validationActions: [Deny]\n  evaluation: {background: {enabled: false}}", 1))}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := loader.NewKyvernoFormat(loader.KyvernoOptions{KyvernoAdmission: tc.beside})
			p, probs := f.Load(ctx, kyvernoCluster(t, true, interceptor.Funcs{}, tc.objs...))
			if len(probs) != 0 {
				t.Fatalf("problems: %q", problems(probs))
			}
			count := func(source string) int {
				return len(findings(p, pod(source, nil))) + len(findings(p, configMapInput(source, 3)))
			}
			if got := count(policies.SourceAdmission); got != tc.admission {
				t.Errorf("%d findings at admission, want %d", got, tc.admission)
			}
			if got := count(policies.SourceAudit); got != tc.audit {
				t.Errorf("%d findings in the audit, want %d", got, tc.audit)
			}
			if got := len(kyvernoIDs(p)); got != 2 {
				t.Errorf("the catalogue lists %d policies, want 2", got)
			}
		})
	}
}

// TestKyvernoFormatKinds: the webhooks intercept the kinds the policies
// match, and the mutating webhook the kinds they mutate.
func TestKyvernoFormatKinds(t *testing.T) {
	ctx := context.Background()
	crd := kyvernoObject(t, strings.NewReplacer("require-tier", "certs", "kinds: [Pod]", "kinds: [Certificate, 'apps/v1/Deployment', 'Pod/exec']",
		"validationFailureAction: Enforce", "validationFailureAction: Enforce\n  background: false").Replace(requireTier))
	c := kyvernoCluster(t, true, interceptor.Funcs{}, kyvernoObject(t, smallConfigMaps), kyvernoObject(t, addTeam), crd)
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}, meta.RESTScopeNamespace)
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{Mapper: mapper})
	p, probs := f.Load(ctx, c)
	if len(probs) != 0 {
		t.Fatalf("problems: %q", problems(probs))
	}
	kl, ok := p.Evaluator.(review.KindLister)
	if !ok {
		t.Fatal("the plugin lists no kinds")
	}
	var judged []string
	for _, k := range kl.Kinds() {
		judged = append(judged, k.Group+"/"+k.Kind)
	}
	slices.Sort(judged)
	if diff := cmp.Diff([]string{"/ConfigMap", "/Pod", "apps/Deployment", "cert-manager.io/Certificate"}, judged); diff != "" {
		t.Errorf("judged kinds (-want +got):\n%s", diff)
	}
	m, ok := p.Evaluator.(review.MutatedKindLister)
	if !ok {
		t.Fatal("a plugin with a mutate rule lists no mutated kinds")
	}
	if diff := cmp.Diff([]policies.GroupVersionKind{{Kind: "ConfigMap"}}, m.MutatedKinds()); diff != "" {
		t.Errorf("mutated kinds (-want +got):\n%s", diff)
	}
	ops, err := p.Evaluator.(review.Mutator).Mutate(ctx, configMapInput(policies.SourceAdmission, 1))
	if err != nil || len(ops) != 1 || ops[0].Path != "/metadata/annotations" {
		t.Errorf("mutation: %+v, %v", ops, err)
	}
}

// TestKyvernoFormatMutationParts: mutate policies judged on different
// sources chain, each seeing what the one before made; at admission the
// one Kyverno's webhook owns does not mutate.
func TestKyvernoFormatMutationParts(t *testing.T) {
	ctx := context.Background()
	owner := kyvernoObject(t, strings.NewReplacer("add-contact", "add-owner", "uid-add-contact", "uid-add-owner",
		"+(contact): platform", "+(owner): '{{ request.object.metadata.annotations.contact }}'",
		"generation: 1}", "generation: 1, annotations: {tollgate.dev/engine: kyverno}}").Replace(addTeam))
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	p, probs := f.Load(ctx, kyvernoCluster(t, true, interceptor.Funcs{}, kyvernoObject(t, addTeam), owner))
	if len(probs) != 0 {
		t.Fatalf("problems: %q", problems(probs))
	}
	mutated := func(source string) map[string]any {
		t.Helper()
		in := configMapInput(source, 1)
		ops, err := p.Evaluator.(review.Mutator).Mutate(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := review.Apply(in.Object, &policies.Mutation{Patch: ops})
		if err != nil {
			t.Fatal(err)
		}
		a, _, _ := unstructured.NestedStringMap(obj, "metadata", "annotations")
		return map[string]any{"annotations": a}
	}
	if diff := cmp.Diff(map[string]any{"annotations": map[string]string{"contact": "platform", "owner": "platform"}}, mutated(policies.SourceCheck)); diff != "" {
		t.Errorf("in check (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"annotations": map[string]string{"contact": "platform"}}, mutated(policies.SourceAdmission)); diff != "" {
		t.Errorf("at admission (-want +got):\n%s", diff)
	}
}

// kyvernoException excuses rule tier-label of require-tier for Pods named
// web, from namespace ns.
func kyvernoException(t *testing.T, ns string) *unstructured.Unstructured {
	return kyvernoObject(t, `
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: web-tier, namespace: `+ns+`, uid: uid-web-tier-`+ns+`, annotations: {tollgate.dev/approver: platform-team}}
spec:
  exceptions: [{policyName: require-tier, ruleNames: [tier-label]}]
  match: {any: [{resources: {kinds: [Pod], names: [web]}}]}
`)
}

// TestKyvernoFormatExceptions: a PolicyException in a namespace the config
// designates waives what it excuses; one elsewhere is a problem on itself
// saying why it does not count; a change of the designated namespaces
// counts at the next load.
func TestKyvernoFormatExceptions(t *testing.T) {
	ctx := context.Background()
	c := kyvernoCluster(t, true, interceptor.Funcs{}, kyvernoObject(t, requireTier),
		kyvernoException(t, "platform-exceptions"), kyvernoException(t, "shop"))
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	cfg := policies.DefaultConfig()
	cfg.Exceptions.Namespaces = []string{"platform-*"}
	f.Configure(cfg)
	p, probs := f.Load(ctx, c)
	got := problems(probs)
	if len(got) != 1 || !strings.HasPrefix(got[0], "PolicyException web-tier: not honoured: namespace shop is not one the config designates") {
		t.Errorf("problems: %q, want the exception in shop not honoured", got)
	}
	if probs[0].Object.GetNamespace() != "shop" {
		t.Errorf("the problem is on %s/%s", probs[0].Object.GetNamespace(), probs[0].Object.GetName())
	}
	d := p.Evaluator.Evaluate(ctx, pod(policies.SourceAdmission, nil))
	if len(d.Findings) != 1 || d.Findings[0].Exception == nil || d.Findings[0].Exception.Namespace != "platform-exceptions" {
		t.Errorf("the Pod's finding is not waived by platform-exceptions/web-tier: %+v", d.Findings)
	}

	// No namespace designated any more: nothing waives.
	f.Configure(policies.DefaultConfig())
	p, probs = f.Load(ctx, c)
	if len(probs) != 2 {
		t.Errorf("problems: %q, want both exceptions not honoured", problems(probs))
	}
	d = p.Evaluator.Evaluate(ctx, pod(policies.SourceAdmission, nil))
	if len(d.Findings) != 1 || d.Findings[0].Exception != nil {
		t.Errorf("a finding is waived with no namespace designated: %+v", d.Findings)
	}
}

// TestKyvernoFormatExceptionExpires: a policies.kyverno.io exception
// stops waiving once its expiresAt passes, though nothing else changed.
func TestKyvernoFormatExceptionExpires(t *testing.T) {
	ctx := context.Background()
	expires := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
	x := kyvernoObject(t, `
apiVersion: policies.kyverno.io/v1
kind: PolicyException
metadata: {name: big-settings, namespace: platform-exceptions, uid: uid-big-settings}
spec:
  policyRefs: [{name: small-configmaps, kind: ValidatingPolicy}]
  expiresAt: "`+expires+`"
  matchConditions: [{name: settings, expression: "object.metadata.name == 'settings'"}]
`)
	c := kyvernoCluster(t, true, interceptor.Funcs{}, kyvernoObject(t, smallConfigMaps), x)
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	cfg := policies.DefaultConfig()
	cfg.Exceptions.Namespaces = []string{"platform-exceptions"}
	f.Configure(cfg)
	waived := func() bool {
		p, _ := f.Load(ctx, c)
		d := p.Evaluator.Evaluate(ctx, configMapInput(policies.SourceAdmission, 3))
		if len(d.Findings) != 1 {
			t.Fatalf("findings: %+v", d.Findings)
		}
		return d.Findings[0].Exception != nil
	}
	if !waived() {
		t.Skip("the exception expired before the first load (a very slow machine)")
	}
	deadline := time.Now().Add(30 * time.Second)
	for waived() {
		if time.Now().After(deadline) {
			t.Fatalf("the exception still waives 30 seconds after it expired at %s", expires)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestKyvernoFormatBadObjects: objects the CRDs would let through but
// Kyverno cannot load are problems on them, naming what is wrong; the
// good policy still judges.
func TestKyvernoFormatBadObjects(t *testing.T) {
	ctx := context.Background()
	notRules := kyvernoObject(t, "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: not-rules, uid: u1}\nspec: {rules: x}\n")
	unknown := kyvernoObject(t, strings.NewReplacer("require-tier", "misspelt", "pattern:", "patern:").Replace(requireTier))
	badVar := kyvernoObject(t, strings.NewReplacer("require-tier", "bad-var", `"label tier is required"`, `"{{ request.object.metadata.labels.| }}"`).Replace(requireTier))
	c := kyvernoCluster(t, true, interceptor.Funcs{}, notRules, unknown, badVar, kyvernoObject(t, smallConfigMaps))
	f := loader.NewKyvernoFormat(loader.KyvernoOptions{})
	p, probs := f.Load(ctx, c)
	got := problems(probs)
	for _, want := range []string{
		"ClusterPolicy not-rules: ",
		"ClusterPolicy misspelt: ",
		"ClusterPolicy bad-var: rule tier-label: ",
	} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no problem starting %q among %q", want, got)
		}
	}
	if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "patern") }) {
		t.Errorf("the unknown field is not named: %q", got)
	}
	if diff := cmp.Diff([]string{"ValidatingPolicy/small-configmaps"}, kyvernoIDs(p)); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
}

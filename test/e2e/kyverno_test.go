package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/webhook"
)

// The Kyverno policies of TestKyvernoPoliciesFromTheCluster, each limited
// to its namespace so the other tests sharing the cluster never meet them.
const (
	kyRequireTier = `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: ky-e2e-require-tier}
spec:
  validationFailureAction: Enforce
  rules:
  - name: tier-label
    match: {any: [{resources: {kinds: [Pod], namespaces: [ky-e2e]}}]}
    validate:
      message: "label tier is required"
      pattern: {metadata: {labels: {tier: "?*"}}}
`
	kyAuditContact = `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: ky-e2e-audit-contact}
spec:
  validationFailureAction: Audit
  rules:
  - name: contact-annotation
    match: {any: [{resources: {kinds: [ConfigMap], namespaces: [ky-e2e]}}]}
    validate:
      message: "annotation contact is required"
      pattern: {metadata: {annotations: {contact: "?*"}}}
`
	kyAddTier = `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: ky-e2e-add-tier}
spec:
  rules:
  - name: deployment-tier
    match: {any: [{resources: {kinds: [Deployment], namespaces: [ky-e2e]}}]}
    mutate:
      patchStrategicMerge:
        metadata: {labels: {+(tier): backend}}
        spec: {template: {metadata: {labels: {+(tier): backend}}}}
  - name: configmap-label
    match: {any: [{resources: {kinds: [ConfigMap], namespaces: [ky-e2e]}}]}
    mutate:
      patchStrategicMerge:
        metadata: {labels: {+(checked-by): kyverno-policy}}
`
	kyMutatingPolicy = `
apiVersion: policies.kyverno.io/v1
kind: MutatingPolicy
metadata: {name: ky-e2e-reviewed}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  matchConditions:
  - name: e2e-namespace
    expression: "object.metadata.namespace == 'ky-e2e'"
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{labels: {"reviewed": "cel"}}}
`
	kySmallConfigMaps = `
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: ky-e2e-small-configmaps}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [configmaps]
  matchConditions:
  - name: e2e-namespace
    expression: "object.metadata.namespace == 'ky-e2e'"
  validations:
  - expression: "!has(object.data) || size(object.data) <= 2"
    message: "a ConfigMap here holds at most 2 keys"
`
	kyBroken = `
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: ky-e2e-broken}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [configmaps]
  validations:
  - expression: "size(object.data) + 'x'"
`
)

// kyAllowedTiers is a namespaced Policy reading the tiers it allows from a
// ConfigMap in its namespace.
const kyAllowedTiers = `
apiVersion: kyverno.io/v1
kind: Policy
metadata: {name: allowed-tiers, namespace: ky-e2e}
spec:
  validationFailureAction: Enforce
  rules:
  - name: known-tier
    match: {any: [{resources: {kinds: [Pod]}}]}
    context:
    - name: tiers
      configMap: {name: tiers, namespace: ky-e2e}
    validate:
      message: "tier {{ request.object.metadata.labels.tier }} is not one of {{ tiers.data.allowed }}"
      deny:
        conditions:
          any:
          - key: "{{ request.object.metadata.labels.tier || '' }}"
            operator: AnyNotIn
            value: "{{ tiers.data.allowed | split(@, ',') }}"
`

func kyPod(name string, labels map[string]string) string {
	return toJSON(map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "ky-e2e", "labels": labels},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": "registry.example/corp/app:1.0"}}}})
}

func kyConfigMap(name string, annotations map[string]string, keys int) string {
	data := map[string]string{}
	for i := range keys {
		data[fmt.Sprintf("k%d", i)] = "v"
	}
	return toJSON(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "ky-e2e", "annotations": annotations}, "data": data})
}

const kyDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ky-e2e}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: registry.example/corp/web:1.0}
`

// TestKyvernoPoliciesFromTheCluster: Kyverno policies applied with kubectl
// judge at admission and in the audit through Tollgate's review core. An
// Enforce ClusterPolicy denies with Kyverno's message; an Audit one on
// ConfigMaps (a kind outside the workloads: the webhooks intercept it)
// admits and is recorded in the audit's Report; a mutate policy labels a
// Deployment together with Tollgate's own injections (and then satisfies
// the Enforce policy), and applying it again changes nothing; a CEL
// ValidatingPolicy denies; a policy whose CEL does not compile is an Event
// while the others still judge; a deleted policy stops judging.
func TestKyvernoPoliciesFromTheCluster(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "ky-e2e")
	for _, p := range []struct{ manifest, kind, name string }{
		{kyRequireTier, "clusterpolicy", "ky-e2e-require-tier"},
		{kyAuditContact, "clusterpolicy", "ky-e2e-audit-contact"},
		{kyAddTier, "clusterpolicy", "ky-e2e-add-tier"},
		{kyMutatingPolicy, "mutatingpolicy.policies.kyverno.io", "ky-e2e-reviewed"},
		{kySmallConfigMaps, "validatingpolicy.policies.kyverno.io", "ky-e2e-small-configmaps"},
		{kyBroken, "validatingpolicy.policies.kyverno.io", "ky-e2e-broken"},
	} {
		applyEventually(t, p.manifest)
		t.Cleanup(func() { kubectl(t, "delete", p.kind, p.name, "--ignore-not-found") })
	}

	// Enforce: denied with the policy, the rule and Kyverno's message.
	eventually(t, time.Minute, func() error {
		return denied(t, kyPod("untiered", map[string]string{"app": "web"}), "label tier is required")
	})
	_, stderr, _ := apply(t, kyPod("untiered", map[string]string{"app": "web"}), "--dry-run=server")
	if !strings.Contains(stderr, "ClusterPolicy/ky-e2e-require-tier") || !strings.Contains(stderr, "tier-label") {
		t.Errorf("the denial names neither the policy nor the rule:\n%s", stderr)
	}
	t.Logf("kubectl apply of a Pod without a tier:\n%s", stderr)
	if _, stderr, err := apply(t, kyPod("tiered", map[string]string{"app": "web", "tier": "backend"}), "--dry-run=server"); err != nil {
		t.Errorf("a Pod with a tier was denied: %s", stderr)
	}

	// A Kyverno PolicyException counts in the namespace the config
	// designates (platform-exceptions), and there only.
	teamNamespace(t, "platform-exceptions")
	kyException := func(ns string) string {
		return fmt.Sprintf(`
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: ky-e2e-excused, namespace: %s, annotations: {tollgate.dev/approver: platform-team}}
spec:
  exceptions: [{policyName: ky-e2e-require-tier, ruleNames: [tier-label]}]
  match: {any: [{resources: {kinds: [Pod], names: [excused], namespaces: [ky-e2e]}}]}
`, ns)
	}
	for _, ns := range []string{"platform-exceptions", "ky-e2e"} {
		applyEventually(t, kyException(ns))
		t.Cleanup(func() {
			kubectl(t, "delete", "policyexception.kyverno.io", "ky-e2e-excused", "-n", ns, "--ignore-not-found")
		})
	}
	eventually(t, time.Minute, func() error {
		if _, stderr, err := apply(t, kyPod("excused", map[string]string{"app": "web"}), "--dry-run=server"); err != nil {
			return fmt.Errorf("the exception in platform-exceptions does not waive: %s", stderr)
		}
		return nil
	})
	if err := denied(t, kyPod("untiered", map[string]string{"app": "web"}), "label tier is required"); err != nil {
		t.Errorf("the exception waives more than its Pod: %v", err)
	}
	eventually(t, time.Minute, func() error {
		list, err := env.kube.CoreV1().Events("ky-e2e").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=ky-e2e-excused"})
		if err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Reason == "NotLoaded" && strings.Contains(e.Message, "namespace ky-e2e is not one the config designates") {
				t.Logf("the exception in ky-e2e: %s: %s", e.Reason, e.Message)
				return nil
			}
		}
		return fmt.Errorf("no NotLoaded Event on PolicyException ky-e2e/ky-e2e-excused among %d", len(list.Items))
	})

	// The CEL ValidatingPolicy denies on ConfigMaps, a kind Tollgate's
	// webhook intercepts because a loaded policy matches it.
	eventually(t, time.Minute, func() error {
		return denied(t, kyConfigMap("big", map[string]string{"contact": "ops"}, 3), "at most 2 keys")
	})
	_, stderr, _ = apply(t, kyConfigMap("big", map[string]string{"contact": "ops"}, 3), "--dry-run=server")
	t.Logf("kubectl apply of a ConfigMap of 3 keys:\n%s", stderr)
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate"}, &vwc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(vwc.Webhooks[0].Rules), "configmaps") {
		t.Errorf("the validating webhook does not intercept configmaps: %+v", vwc.Webhooks[0].Rules)
	}

	// The broken policy is an Event naming it and what is wrong.
	eventually(t, time.Minute, func() error {
		evs := gatekeeperEvents(t, "ValidatingPolicy", "ky-e2e-broken")
		if len(evs) == 0 || !strings.Contains(strings.Join(evs, "\n"), "NotLoaded") {
			return fmt.Errorf("no NotLoaded Event on ValidatingPolicy ky-e2e-broken: %q", evs)
		}
		return nil
	})
	t.Logf("broken policy: %q", gatekeeperEvents(t, "ValidatingPolicy", "ky-e2e-broken"))

	// Mutation: Kyverno's label, then Tollgate's ownership labels and
	// security context; the Enforce policy (autogen for Deployments) then
	// finds the tier the mutation added.
	if _, stderr, err := env.cluster.KubectlWithStdin(ctx, kyDeployment, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("the Deployment was not admitted: %v\n%s", err, stderr)
	}
	t.Cleanup(func() { kubectl(t, "delete", "deployment", "web", "-n", "ky-e2e", "--ignore-not-found") })
	var d appsv1.Deployment
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: "ky-e2e", Name: "web"}, &d); err != nil {
		t.Fatal(err)
	}
	if d.Labels["tier"] != "backend" || d.Spec.Template.Labels["tier"] != "backend" {
		t.Errorf("Kyverno's mutation is missing: labels %v, template labels %v", d.Labels, d.Spec.Template.Labels)
	}
	if d.Labels["team"] != "payments" || d.Spec.Template.Labels["team"] != "payments" {
		t.Errorf("Tollgate's ownership labels are missing: labels %v, template labels %v", d.Labels, d.Spec.Template.Labels)
	}
	if sc := d.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("Tollgate's security context is missing: %+v", sc)
	}
	// Applied again, the object is not written: every mutation is
	// idempotent.
	if _, stderr, err := env.cluster.KubectlWithStdin(ctx, kyDeployment, "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatalf("the second apply failed: %v\n%s", err, stderr)
	}
	var again appsv1.Deployment
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: "ky-e2e", Name: "web"}, &again); err != nil {
		t.Fatal(err)
	}
	// (The controller manager writes the status and its revision
	// annotation meanwhile: the spec, the generation, the labels and the
	// other annotations are what an apply changes.)
	userAnnotations := func(a map[string]string) map[string]string {
		return maps.Collect(func(yield func(string, string) bool) {
			for k, v := range a {
				if !strings.HasPrefix(k, "deployment.kubernetes.io/") && !yield(k, v) {
					return
				}
			}
		})
	}
	if again.Generation != d.Generation || !equality.Semantic.DeepEqual(again.Spec, d.Spec) ||
		!maps.Equal(again.Labels, d.Labels) || !maps.Equal(userAnnotations(again.Annotations), userAnnotations(d.Annotations)) {
		t.Errorf("the second apply changed the Deployment: generation %d → %d, labels %v → %v, annotations %v → %v, spec diff:\n%s",
			d.Generation, again.Generation, d.Labels, again.Labels, d.Annotations, again.Annotations, cmp.Diff(d.Spec, again.Spec))
	}

	// Audit: the ConfigMap without a contact is admitted (and mutated: a
	// kind outside the workloads the mutating webhook intercepts for the
	// policy), then recorded in the namespace's Report.
	if _, stderr, err := apply(t, kyConfigMap("settings", nil, 1)); err != nil {
		t.Fatalf("the Audit policy denied: %v\n%s", err, stderr)
	}
	var cm corev1.ConfigMap
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: "ky-e2e", Name: "settings"}, &cm); err != nil {
		t.Fatal(err)
	}
	if cm.Labels["checked-by"] != "kyverno-policy" || cm.Labels["reviewed"] != "cel" {
		t.Errorf("the ConfigMap was not mutated by the ClusterPolicy and the MutatingPolicy: labels %v", cm.Labels)
	}
	// A policy change makes the audit rescan (it scans on every load and
	// every 10 minutes): an annotation is one.
	kubectl(t, "annotate", "clusterpolicy", "ky-e2e-audit-contact", "e2e.tollgate.dev/rescan=1", "--overwrite")
	eventually(t, 3*time.Minute, func() error {
		results, err := reportResults(ctx, "ky-e2e", "tollgate")
		if err != nil {
			return err
		}
		for _, res := range results {
			if res["policy"] == "ClusterPolicy/ky-e2e-audit-contact" && res["result"] != "pass" &&
				strings.Contains(fmt.Sprint(res["resources"]), "settings") && strings.Contains(fmt.Sprint(res["message"]), "contact") {
				t.Logf("audit result: %v", res)
				return nil
			}
		}
		return fmt.Errorf("no ClusterPolicy/ky-e2e-audit-contact result for settings among %d results", len(results))
	})

	// A namespaced Policy reads the ConfigMap its context names: before it
	// exists the Enforce rule cannot be evaluated and fails closed; once
	// created, and again when it changes, it judges the next request.
	tiers := func(allowed string) string {
		return toJSON(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "tiers", "namespace": "ky-e2e", "annotations": map[string]any{"contact": "ops"}},
			"data":     map[string]any{"allowed": allowed}})
	}
	applyEventually(t, kyAllowedTiers)
	t.Cleanup(func() {
		kubectl(t, "delete", "policy.kyverno.io", "allowed-tiers", "-n", "ky-e2e", "--ignore-not-found")
	})
	batch := kyPod("batch", map[string]string{"app": "web", "tier": "batch"})
	eventually(t, time.Minute, func() error {
		return denied(t, batch, `configmaps "ky-e2e/tiers" not found`)
	})
	if _, stderr, err := apply(t, tiers("frontend,backend")); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	eventually(t, time.Minute, func() error {
		return denied(t, batch, "tier batch is not one of frontend,backend")
	})
	if _, stderr, err := apply(t, tiers("frontend,backend,batch")); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	eventually(t, time.Minute, func() error {
		if _, stderr, err := apply(t, batch, "--dry-run=server"); err != nil {
			return fmt.Errorf("the ConfigMap's change was not read: %s", stderr)
		}
		return nil
	})

	kubectl(t, "delete", "policy.kyverno.io", "allowed-tiers", "-n", "ky-e2e")

	// Deleted, the Enforce policy stops judging.
	kubectl(t, "delete", "clusterpolicy", "ky-e2e-require-tier")
	eventually(t, time.Minute, func() error {
		if _, stderr, err := apply(t, kyPod("untiered", map[string]string{"app": "web"}), "--dry-run=server"); err != nil {
			return fmt.Errorf("still denied: %s", stderr)
		}
		return nil
	})

	// With the mutate policies gone, complete Pods skip the mutating
	// webhook again (its match condition is back).
	kubectl(t, "delete", "clusterpolicy", "ky-e2e-add-tier")
	kubectl(t, "delete", "mutatingpolicy.policies.kyverno.io", "ky-e2e-reviewed")
	eventually(t, time.Minute, func() error {
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate"}, &mwc); err != nil {
			return err
		}
		for _, c := range mwc.Webhooks[0].MatchConditions {
			if c.Name == webhook.CompleteConditionName {
				return nil
			}
		}
		return fmt.Errorf("no %s match condition after the mutate policy was deleted", webhook.CompleteConditionName)
	})
}

// kyRequireContact is an Audit ClusterPolicy on the Deployments of shop,
// mapped to a control, for the audit's Report and the compliance report.
const kyRequireContact = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-contact
  annotations:
    policies.kyverno.io/title: Workloads name a contact
    policies.kyverno.io/severity: medium
    tollgate.dev/controls: soc2:CC8.1
spec:
  rules:
    - name: contact
      match: {any: [{resources: {kinds: [Deployment], namespaces: [shop]}}]}
      validate:
        failureAction: Audit
        message: annotation contact is required
        pattern: {metadata: {annotations: {contact: "?*"}}}
`

// kyDefaultTier is the mutate policy docs/kyverno.md shows.
const kyDefaultTier = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: default-tier}
spec:
  rules:
    - name: default-tier
      match: {any: [{resources: {kinds: [Deployment]}}]}
      mutate:
        patchStrategicMerge:
          metadata: {labels: {+(tier): backend}}
          spec: {template: {metadata: {labels: {+(tier): backend}}}}
`

// kySmallConfigMapsFile is small-configmaps.yaml of docs/kyverno.md: a
// ValidatingPolicy whose CEL does not compile.
const kySmallConfigMapsFile = `apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: small-configmaps}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  validations:
    - expression: "size(object.data) + 'x'"
`

// TestKyvernoDemoPoliciesAsTheDocsShow runs the Kyverno policies of
// test/demo/manifests/kyverno in the namespace shop, with the commands
// docs/kyverno.md shows: the ClusterPolicy denies web without a tier; the
// PolicyException in platform-exceptions waives it and the audit records
// the waiver, while the same exception in shop is an Event; a mutate
// policy adds the tier beside Tollgate's defaults, idempotently; an Audit
// policy's finding is in the Report and under its control in `tollgate
// report`; a policy that does not compile, and a broken new version of
// one in force, are Events.
func TestKyvernoDemoPoliciesAsTheDocsShow(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"shop", "platform", "platform-exceptions"} {
		teamNamespace(t, ns)
	}
	// Another test may have left its web in shop.
	kubectl(t, "delete", "deployment", "web", "-n", "shop", "--ignore-not-found", "--wait")
	tiers := filepath.Join(root, "test", "demo", "manifests", "kyverno", "tiers.yaml")
	kubectl(t, "apply", "-f", tiers)
	web, err := os.ReadFile(filepath.Join(root, "test", "demo", "manifests", "web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kubectl(t, "delete", "-f", tiers, "--ignore-not-found")
		kubectl(t, "delete", "deployment", "web", "-n", "shop", "--ignore-not-found")
		kubectl(t, "delete", "policyexception.kyverno.io", "web-tier", "-n", "shop", "--ignore-not-found")
		kubectl(t, "delete", "policyexception.kyverno.io", "web-tier", "-n", "platform-exceptions", "--ignore-not-found")
		kubectl(t, "delete", "clusterpolicy", "default-tier", "require-contact", "--ignore-not-found")
		kubectl(t, "delete", "validatingpolicy.policies.kyverno.io", "small-configmaps", "--ignore-not-found")
		// require-tier judges every Pod of the shared cluster: the tests
		// after this one start once Tollgate has let it go.
		probe := strings.Replace(string(web), "name: web", "name: web-after-tiers", 1)
		eventually(t, time.Minute, func() error {
			if _, stderr, err := apply(t, probe, "--dry-run=server"); err != nil && strings.Contains(stderr, "ClusterPolicy/require-tier") {
				return fmt.Errorf("require-tier still judges after its deletion: %s", stderr)
			}
			return nil
		})
	})

	// Without a tier, web is denied.
	eventually(t, time.Minute, func() error {
		return denied(t, string(web), "[ClusterPolicy/require-tier]")
	})
	out, err := console(t, "", "apply", "-f", "test/demo/manifests/web.yaml")
	if err == nil || !strings.Contains(out, "[ClusterPolicy/require-tier] autogen-tier-label") {
		t.Errorf("web without a tier (err %v):\n%s", err, out)
	}
	docexample.Check(t, root, "e2e-kyverno-web-denied", out)

	// The exception in platform-exceptions waives it; the audit records
	// the finding waived.
	var transcript strings.Builder
	out, err = console(t, "", "apply", "-f", "test/demo/manifests/kyverno/web-tier-exception.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(out)
	eventually(t, time.Minute, func() error {
		if _, stderr, err := apply(t, string(web), "--dry-run=server"); err != nil {
			return fmt.Errorf("the exception does not waive: %s", stderr)
		}
		return nil
	})
	out, err = console(t, "", "apply", "-f", "test/demo/manifests/web.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(out)
	kubectl(t, "annotate", "clusterpolicy", "require-tier", "e2e.tollgate.dev/rescan=1", "--overwrite")
	eventually(t, 3*time.Minute, func() error {
		results, err := reportResults(ctx, "shop", "tollgate")
		if err != nil {
			return err
		}
		for _, res := range results {
			if res["policy"] == "ClusterPolicy/require-tier" && res["result"] == "skip" && strings.Contains(fmt.Sprint(res["resources"]), "web") {
				return nil
			}
		}
		return fmt.Errorf("no waived ClusterPolicy/require-tier result for web among %d results", len(results))
	})
	out, err = console(t, "", "get", "reports.openreports.io", "-n", "shop", "tollgate", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(out)
	out = transcript.String()
	docexample.Check(t, root, "e2e-kyverno-exception-waives", out)

	// The same exception in shop counts for nothing, and says so.
	exception, err := os.ReadFile(filepath.Join(root, "test", "demo", "manifests", "kyverno", "web-tier-exception.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	applyEventually(t, strings.Replace(string(exception), "namespace: platform-exceptions", "namespace: shop", 1))
	eventually(t, time.Minute, func() error {
		out, err = console(t, "", "events", "-n", "shop", "--for", "policyexception/web-tier")
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		if !strings.Contains(out, "NotLoaded") {
			return fmt.Errorf("no NotLoaded Event on the exception in shop:\n%s", out)
		}
		return nil
	})
	docexample.Check(t, root, "e2e-kyverno-exception-elsewhere", out)

	// A mutate policy adds the tier, beside Tollgate's defaults; applied
	// again, nothing changes.
	kubectl(t, "delete", "deployment", "web", "-n", "shop", "--wait")
	kubectl(t, "delete", "policyexception.kyverno.io", "web-tier", "-n", "platform-exceptions")
	applyEventually(t, kyDefaultTier)
	// Admitted is not enough: the deleted exception may still waive for a
	// moment. The dry run must come back with the tier the policy adds.
	eventually(t, time.Minute, func() error {
		stdout, stderr, err := apply(t, string(web), "--dry-run=server", "--server-side",
			"-o", "jsonpath={.metadata.labels.tier}/{.spec.template.metadata.labels.tier}")
		if err != nil || stdout != "backend/backend" {
			return fmt.Errorf("the mutation does not add the tier (got %q): %s", stdout, stderr)
		}
		return nil
	})
	transcript.Reset()
	for _, args := range [][]string{
		{"apply", "--server-side", "-f", "test/demo/manifests/web.yaml"},
		{"get", "deploy", "web", "-n", "shop", "-o", "yaml"},
		{"apply", "--server-side", "-f", "test/demo/manifests/web.yaml"},
		{"get", "deploy", "web", "-n", "shop", "-o", "jsonpath={.metadata.generation}"},
	} {
		out, err = console(t, "", args...)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		transcript.WriteString(out)
	}
	out = transcript.String()
	if !strings.HasSuffix(out, "\n1") && !strings.HasSuffix(out, "\n1\n") {
		t.Errorf("applied again, web's generation moved:\n%s", out)
	}
	docexample.Check(t, root, "e2e-kyverno-mutation", out)
	kubectl(t, "delete", "clusterpolicy", "default-tier")

	// An Audit policy's finding, in the Report and under its control.
	applyEventually(t, kyRequireContact)
	eventually(t, 3*time.Minute, func() error {
		results, err := reportResults(ctx, "shop", "tollgate")
		if err != nil {
			return err
		}
		for _, res := range results {
			if res["policy"] == "ClusterPolicy/require-contact" && res["result"] == "warn" {
				return nil
			}
		}
		return fmt.Errorf("no ClusterPolicy/require-contact result among %d results", len(results))
	})
	out, err = console(t, "", "get", "reports.openreports.io", "-n", "shop", "tollgate", "-o", "yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	docexample.Check(t, root, "e2e-kyverno-audit-report", out)
	report := exec.CommandContext(ctx, tollgateBinary(t), "report", "--format", "markdown")
	report.Dir = root
	report.Env = append(os.Environ(), "KUBECONFIG="+env.cluster.KubeconfigPath())
	md, err := report.CombinedOutput()
	if err != nil {
		t.Fatalf("tollgate report: %v\n%s", err, md)
	}
	out = "$ tollgate report --format markdown\n" + string(md)
	docexample.Check(t, root, "e2e-kyverno-compliance-report", out)

	// A policy that does not compile is an Event; so is a new version of
	// one in force that does not load, and the last good one stays.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "small-configmaps.yaml"), []byte(kySmallConfigMapsFile), 0o600); err != nil {
		t.Fatal(err)
	}
	transcript.Reset()
	out, err = console(t, dir, "apply", "-f", "small-configmaps.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(out)
	eventually(t, time.Minute, func() error {
		out, err = console(t, dir, "events", "--for", "validatingpolicy/small-configmaps")
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		if !strings.Contains(out, "NotLoaded") {
			return fmt.Errorf("no NotLoaded Event on small-configmaps:\n%s", out)
		}
		return nil
	})
	transcript.WriteString(out)
	out, err = console(t, dir, "patch", "clusterpolicy", "require-tier", "--type=json",
		"-p", `[{"op":"replace","path":"/spec/rules/0/validate/message","value":"tier {{ request.object.metadata.labels.| }}"}]`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(out)
	eventually(t, time.Minute, func() error {
		out, err = console(t, dir, "events", "--for", "clusterpolicy/require-tier")
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		if !strings.Contains(out, "stays in force") {
			return fmt.Errorf("no NotLoaded Event on require-tier's generation 2:\n%s", out)
		}
		return nil
	})
	transcript.WriteString(out)
	out = transcript.String()
	docexample.Check(t, root, "e2e-kyverno-not-loaded", out)
	if err := denied(t, strings.Replace(string(web), "name: web", "name: web2", 1), "[ClusterPolicy/require-tier]"); err != nil {
		t.Errorf("the last good version of require-tier is not in force: %v", err)
	}
}

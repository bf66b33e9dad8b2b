package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// recordDeployment asks replicas × (1 core, 2 GiB), with the given labels
// on its pod template.
func recordDeployment(ns, name string, replicas int, labels map[string]string) string {
	tl := map[string]string{"app": name}
	for k, v := range labels {
		tl[k] = v
	}
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":%q},
	 "spec":{"replicas":%d,"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":%s},
	  "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/train:1.0","resources":{"requests":{"cpu":"1","memory":"2Gi"},"limits":{"memory":"2Gi"}}}]}}}}`,
		name, ns, replicas, name, toJSON(tl))
}

// TestOwnershipOfRecordThroughTheAPIServer: with the default overwrite:
// false, a workload that labels itself with another team or cost-center
// than its namespace's is denied with the finding, not silently charged
// elsewhere; a label the namespace does not decide stays the workload's;
// and a team that steps out of a team-scoped deny Budget by labelling its
// pods as another team is still counted against it (the budget gate reads
// the namespace's team), even with the finding waived by an exception.
func TestOwnershipOfRecordThroughTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := "record"
	teamNamespace(t, ns) // team payments, owner alice, cost-center CC-1234
	teamNamespace(t, "platform-exceptions")

	// Charging another team's cost-center: denied, with the remedy's facts.
	_, stderr, err := apply(t, recordDeployment(ns, "charged-elsewhere", 1, map[string]string{"cost-center": "CC-9999"}))
	want := `label "cost-center" is "CC-9999", but namespace "record" sets it to "CC-1234"`
	if err == nil || !strings.Contains(stderr, "[ownership-of-record]") || !strings.Contains(stderr, want) {
		t.Fatalf("another cost-center: %v\n%s\nwant a denial with %s", err, stderr, want)
	}
	// A look-alike of the namespace's team is another team.
	_, stderr, err = apply(t, recordDeployment(ns, "look-alike", 1, map[string]string{"team": "paymentS"}), "--dry-run=server")
	if err == nil || !strings.Contains(stderr, `label "team" is "paymentS", but namespace "record" sets it to "payments"`) {
		t.Fatalf("look-alike team: %v\n%s", err, stderr)
	}

	// A claim is charged by its labels too.
	pvc := fmt.Sprintf(`{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","namespace":%q,"labels":{"cost-center":"CC-9999"}},
	 "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}`, ns)
	if _, stderr, err := apply(t, pvc, "--dry-run=server"); err == nil || !strings.Contains(stderr, "[ownership-of-record] metadata.labels.cost-center") {
		t.Errorf("a claim charging another cost-center: %v\n%s", err, stderr)
	}

	// A label that is not one of record (owner) stays the workload's own;
	// the ones of record are copied from the namespace.
	if _, stderr, err := apply(t, recordDeployment(ns, "own-owner", 0, map[string]string{"owner": "bob"})); err != nil {
		t.Fatalf("own owner label: %v\n%s", err, stderr)
	}
	if got := kubectl(t, "get", "deployment", "own-owner", "-n", ns, "-o",
		"jsonpath={.spec.template.metadata.labels.owner} {.spec.template.metadata.labels.team} {.spec.template.metadata.labels.cost-center}"); got != "bob payments CC-1234" {
		t.Errorf("template labels owner/team/cost-center = %q, want \"bob payments CC-1234\"", got)
	}

	// A team-scoped deny Budget, nearly spent.
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "team-cap"},
		Spec: v1alpha1.BudgetSpec{Amount: "150", Action: "deny",
			Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}}}
	if err := env.client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(ctx, b) })
	b.Status.Forecast = "140.00"
	if err := env.client.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The finding is waived for "step-out*" by an approved exception, so
	// only the Budget can stop it.
	x := fmt.Sprintf(`apiVersion: tollgate.dev/v1alpha1
kind: TollgateException
metadata: {name: record-step-out, namespace: platform-exceptions}
spec:
  policies: [ownership-of-record]
  match: {namespaces: [%s], names: ["step-out*"]}
  reason: shared batch runner, charged to payments
  ticket: FIN-42
  approver: finance@corp.example
  expiry: %s
`, ns, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if _, stderr, err := apply(t, x); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	t.Cleanup(func() {
		kubectl(t, "delete", "tollgateexception", "record-step-out", "-n", "platform-exceptions", "--ignore-not-found")
	})
	waitException(t, "platform-exceptions", "record-step-out", "True", "honoured until")

	stepOut := recordDeployment(ns, "step-out", 1, map[string]string{"team": "search"})
	wantBudget := "[budget/record/team-cap] this adds $29.26/month; team=payments is forecast at $140.00 of its $150.00 monthly budget"
	eventually(t, 30*time.Second, func() error {
		_, stderr, err = apply(t, stepOut, "--dry-run=server")
		if err == nil {
			return fmt.Errorf("admitted (the Budget's cache, the exception's): %s", stderr)
		}
		if !strings.Contains(stderr, wantBudget) {
			return fmt.Errorf("not denied by the Budget yet: %w\n%s", err, stderr)
		}
		return nil
	})
	if strings.Contains(stderr, "[ownership-of-record]") {
		t.Errorf("the waived finding still denies:\n%s", stderr)
	}
}

// TestForgedOwnershipThroughTheAPIServer: a bare pod that names a
// controller in its ownerReferences is judged at that controller only when
// it is a real one: of a kind that makes pods, in the namespace, with the
// UID named. A ConfigMap, a ReplicaSet that does not exist, a real
// ReplicaSet with another UID or in another API group are all judged as
// the bare pod they are; the pods a real Deployment's controllers create
// still pass.
func TestForgedOwnershipThroughTheAPIServer(t *testing.T) {
	ctx := context.Background()
	ns := "forged"
	teamNamespace(t, ns)
	if _, stderr, err := apply(t, configMap(ns, "decoy", nil)); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	rs := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"real","namespace":%q},
	 "spec":{"replicas":0,"selector":{"matchLabels":{"app":"real"}},"template":{"metadata":{"labels":{"app":"real"}},
	  "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/app:1.0"}]}}}}`, ns)
	if _, stderr, err := apply(t, rs); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	cm, err := env.kube.CoreV1().ConfigMaps(ns).Get(ctx, "decoy", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	real, err := env.kube.AppsV1().ReplicaSets(ns).Get(ctx, "real", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Each pod carries an empty cost-center (against the label schema) and
	// would be charged to nobody: only a skip at a controller lets it in.
	pod := func(name, apiVersion, kind, owner, uid string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q,"labels":{"cost-center":""},
		  "ownerReferences":[{"apiVersion":%q,"kind":%q,"name":%q,"uid":%q,"controller":true}]},
		 "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/app:1.0"}]}}`, name, ns, apiVersion, kind, owner, uid)
	}
	for _, tc := range []struct{ name, manifest string }{
		{"a ConfigMap", pod("forged-configmap", "v1", "ConfigMap", "decoy", string(cm.UID))},
		{"a ReplicaSet that does not exist", pod("forged-missing", "apps/v1", "ReplicaSet", "nowhere-5d8f", "0b6c5a9e-0000-4000-8000-000000000001")},
		{"a real ReplicaSet with another UID", pod("forged-uid", "apps/v1", "ReplicaSet", "real", "0b6c5a9e-0000-4000-8000-000000000002")},
		{"a real ReplicaSet in another API group", pod("forged-group", "evil.example/v1", "ReplicaSet", "real", string(real.UID))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, err := apply(t, tc.manifest)
			for _, want := range []string{
				`[ownership-labels] metadata.labels.cost-center: label "cost-center": the value is empty`,
				`[ownership-of-record] metadata.labels.cost-center: label "cost-center" is "", but namespace "forged" sets it to "CC-1234"`,
			} {
				if err == nil || !strings.Contains(stderr, want) {
					t.Errorf("a bare pod claiming %s: %v\n%s\nwant it judged as a bare pod: %s", tc.name, err, stderr, want)
				}
			}
		})
	}
	// Named by the server (generateName), judged the same.
	generated := strings.Replace(pod("", "v1", "ConfigMap", "decoy", string(cm.UID)), `"name":"",`, `"generateName":"forged-",`, 1)
	if _, stderr, err := env.cluster.KubectlWithStdin(ctx, generated, "create", "-f", "-"); err == nil || !strings.Contains(stderr, `label "cost-center": the value is empty`) {
		t.Errorf("a generateName pod claiming a ConfigMap: %v\n%s", err, stderr)
	}
	if pods, err := env.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil || len(pods.Items) != 0 {
		t.Fatalf("forged pods admitted: %v %v", pods, err)
	}

	// A real Deployment: its ReplicaSet and pods, created by the
	// controllers an instant apart, are judged at their controllers.
	deploy := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":%q},
	 "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
	  "spec":{"containers":[{"name":"c","image":"ghcr.io/corp/web:1.0"}]}}}}`, ns)
	if _, stderr, err := apply(t, deploy); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	var web string
	eventually(t, 90*time.Second, func() error {
		pods, err := env.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d pods of the Deployment, want 2", len(pods.Items))
		}
		web = pods.Items[0].Name
		return nil
	})
	// Relabelling one of those pods is the pod's own change: judged on it.
	_, stderr, err := env.cluster.Kubectl(ctx, "label", "pod", web, "-n", ns, "cost-center=CC-9999", "--overwrite")
	if err == nil || !strings.Contains(stderr, `[ownership-of-record] metadata.labels.cost-center: label "cost-center" is "CC-9999"`) {
		t.Errorf("relabelling a Deployment's pod with another cost-center: %v\n%s", err, stderr)
	}
}

// TestDockerHubImagesHaveOneName: an image policy written for
// docker.io/library/* applies to a pod's image however Docker Hub is
// written (nginx, docker.io/library/nginx, index.docker.io/library/nginx),
// and to nothing else. The policy warns: Hub is not reachable from here,
// so the finding that it could not verify the image is what shows it
// applied.
func TestDockerHubImagesHaveOneName(t *testing.T) {
	ns := "hub"
	teamNamespace(t, ns)
	k := newKeyPair(t)
	if _, stderr, err := apply(t, imagePolicy("hub", "docker.io/library/*", string(k.pem), "Warn")); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	t.Cleanup(func() { kubectl(t, "delete", "tollgateimagepolicy", "hub", "--ignore-not-found") })
	waitImagePolicyReady(t, "hub")
	for i, image := range []string{"nginx:1.27", "docker.io/library/nginx:1.27", "index.docker.io/library/nginx:1.27", "registry-1.docker.io/library/nginx:1.27", "library/nginx:1.27",
		"Docker.io/library/nginx:1.27", "index.docker.io:443/library/nginx:1.27"} {
		var stderr string
		eventually(t, 30*time.Second, func() error {
			var err error
			_, stderr, err = apply(t, imagePod(ns, fmt.Sprintf("hub-%d", i), image), "--dry-run=server")
			if err != nil {
				return fmt.Errorf("%s: %w: %s", image, err, stderr)
			}
			if !strings.Contains(stderr, "[image-policy/hub]") {
				return fmt.Errorf("%s: the policy did not apply (yet): %s", image, stderr)
			}
			return nil
		})
		if i == 0 {
			t.Logf("%s: %s", image, strings.TrimSpace(stderr))
		}
	}
	for i, image := range []string{"ghcr.io/library/nginx:1.27", "docker.io/bitnami/nginx:1.27", "mirror.example/docker.io/library/nginx:1.27"} {
		_, stderr, err := apply(t, imagePod(ns, fmt.Sprintf("other-%d", i), image), "--dry-run=server")
		if err != nil || strings.Contains(stderr, "[image-policy/hub]") {
			t.Errorf("%s: %v\n%s\nwant no image-policy/hub finding", image, err, stderr)
		}
	}
}

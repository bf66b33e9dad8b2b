package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

const plainDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: registry.example/web:1.4.2
`

const privilegedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: %s}
spec:
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:
      hostNetwork: true
      containers:
        - name: agent
          image: registry.example/agent:2.0
          securityContext: {privileged: true}
`

func TestClientSideApplyMutatesAndControllerPodsAreAdmitted(t *testing.T) {
	// A namespace without its ownership labels is refused, as
	// docs/install.md shows.
	out, err := console(t, "", "create", "namespace", "shop")
	if err == nil || !strings.Contains(out, "[ownership-labels]") {
		t.Fatalf("a namespace without ownership labels (err %v):\n%s", err, out)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docexample.Check(t, root, "e2e-install-namespace-denied", out)
	teamNamespace(t, "shop")
	out, stderr, err := apply(t, fmt.Sprintf(plainDeployment, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "deployment.apps/web created") || stderr != "" {
		t.Fatalf("apply: %q %q", out, stderr)
	}
	got := kubectl(t, "get", "deployment", "web", "-n", "shop", "-o", "json")
	var d struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(got), &d); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"team", "owner", "cost-center", "environment"} {
		if d.Metadata.Labels[k] == "" || d.Spec.Template.Labels[k] == "" {
			t.Errorf("label %s not injected: %v / %v", k, d.Metadata.Labels, d.Spec.Template.Labels)
		}
	}
	ps := d.Spec.Template.Spec
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context not hardened: %+v", ps.SecurityContext)
	}
	c := ps.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation ||
		c.SecurityContext.Capabilities == nil || len(c.SecurityContext.Capabilities.Drop) != 1 || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context not hardened: %+v", c.SecurityContext)
	}
	if c.Resources.Requests.Cpu().String() != "100m" || c.Resources.Limits.Memory().String() != "256Mi" {
		t.Errorf("resources not defaulted: %+v", c.Resources)
	}
	if !strings.Contains(d.Metadata.Annotations[policies.InjectedAnnotation], `"labels":["cost-center","environment","owner","team"]`) {
		t.Errorf("annotation %s = %q", policies.InjectedAnnotation, d.Metadata.Annotations[policies.InjectedAnnotation])
	}

	// The Deployment controller's ReplicaSet and Pods pass through admission
	// too, and carry the ownership labels.
	eventually(t, 90*time.Second, func() error {
		pods, err := env.kube.CoreV1().Pods("shop").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d pods, want 2", len(pods.Items))
		}
		for _, p := range pods.Items {
			if p.Labels["cost-center"] != "CC-1234" {
				return fmt.Errorf("pod %s labels %v", p.Name, p.Labels)
			}
		}
		return nil
	})
	if !strings.Contains(env.decision.String(), `"kind":"v1/Pod"`) {
		t.Errorf("no controller-created pod in the decision log")
	}

	// Re-applying the same manifest changes nothing: the mutation is idempotent.
	gen := kubectl(t, "get", "deployment", "web", "-n", "shop", "-o", "jsonpath={.metadata.generation}")
	out, _, err = apply(t, fmt.Sprintf(plainDeployment, "shop"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "unchanged") && !strings.Contains(out, "configured") {
		t.Fatalf("re-apply: %q", out)
	}
	if gen2 := kubectl(t, "get", "deployment", "web", "-n", "shop", "-o", "jsonpath={.metadata.generation}"); gen2 != gen {
		t.Errorf("re-apply changed the generation %s → %s: the mutation is not idempotent", gen, gen2)
	}
}

func TestDenialsAreTheSameForEveryKindOfApply(t *testing.T) {
	teamNamespace(t, "denials")
	manifest := fmt.Sprintf(privilegedDeployment, "agent", "denials")
	for _, flags := range [][]string{nil, {"--server-side"}, {"--dry-run=server"}, {"--server-side", "--dry-run=server"}} {
		t.Run(strings.Join(append([]string{"apply"}, flags...), " "), func(t *testing.T) {
			_, stderr, err := apply(t, manifest, flags...)
			if err == nil {
				t.Fatal("privileged Deployment admitted")
			}
			for _, want := range []string{
				`admission webhook "validate.tollgate.dev" denied the request: tollgate denied Deployment denials/agent`,
				"[pss-baseline-privileged] spec.template.spec.containers[0].securityContext.privileged:",
				"[pss-baseline-host-namespaces] spec.template.spec.hostNetwork:",
			} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
	if _, err := env.kube.AppsV1().Deployments("denials").Get(context.Background(), "agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("denied Deployment exists: %v", err)
	}
	// A dry run of a good object passes and creates nothing.
	if _, _, err := apply(t, fmt.Sprintf(plainDeployment, "denials"), "--dry-run=server"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.kube.AppsV1().Deployments("denials").Get(context.Background(), "web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry run created the Deployment: %v", err)
	}
	// Server-side apply of a good object is mutated like any other, twice in a row without change.
	for i := range 2 {
		out, _, err := apply(t, fmt.Sprintf(plainDeployment, "denials"), "--server-side")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "serverside-applied") {
			t.Fatalf("apply %d: %q", i, out)
		}
	}
	if gen := kubectl(t, "get", "deployment", "web", "-n", "denials", "-o", "jsonpath={.metadata.generation} {.spec.template.metadata.labels.team}"); gen != "1 payments" {
		t.Errorf("after two server-side applies: generation/team %q, want \"1 payments\"", gen)
	}
}

func TestWarnModePrintsWarnings(t *testing.T) {
	teamNamespace(t, "warn")
	_, stderr, err := apply(t, strings.Replace(fmt.Sprintf(plainDeployment, "warn"), "web:1.4.2", "web:latest", 1))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "Warning: tollgate: [images-no-latest] spec.template.spec.containers[0].image:") {
		t.Fatalf("no warning printed:\n%s", stderr)
	}
}

func TestClientGoCreates(t *testing.T) {
	teamNamespace(t, "clientgo")
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "clientgo"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1.0"}}},
	}
	created, err := env.kube.CoreV1().Pods("clientgo").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Labels["team"] != "payments" || created.Spec.SecurityContext.RunAsNonRoot == nil || created.Spec.Containers[0].SecurityContext == nil {
		t.Fatalf("not mutated: %+v %+v", created.Labels, created.Spec.SecurityContext)
	}
	priv := true
	bad := pod.DeepCopy()
	bad.Name = "bad"
	bad.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &priv}
	_, err = env.kube.CoreV1().Pods("clientgo").Create(ctx, bad, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "pss-baseline-privileged") {
		t.Fatalf("privileged pod: %v", err)
	}
}

func TestCronJobs(t *testing.T) {
	teamNamespace(t, "batch")
	cron := `apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: batch}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: report, image: registry.example/report:3.1%s}]
`
	if _, _, err := apply(t, fmt.Sprintf(cron, "")); err != nil {
		t.Fatal(err)
	}
	got := kubectl(t, "get", "cronjob", "report", "-n", "batch", "-o",
		"jsonpath={.spec.jobTemplate.metadata.labels.team} {.spec.jobTemplate.spec.template.metadata.labels.cost-center} {.spec.jobTemplate.spec.template.spec.securityContext.runAsNonRoot}")
	if got != "payments CC-1234 true" {
		t.Fatalf("CronJob templates: %q", got)
	}
	_, stderr, err := apply(t, strings.Replace(fmt.Sprintf(cron, ""), "restartPolicy: OnFailure", "restartPolicy: OnFailure\n          hostPID: true", 1))
	if err == nil || !strings.Contains(stderr, "[pss-baseline-host-namespaces] spec.jobTemplate.spec.template.spec.hostPID") {
		t.Fatalf("hostPID CronJob: %v\n%s", err, stderr)
	}
}

func TestKubectlDebugIsJudged(t *testing.T) {
	teamNamespace(t, "debug")
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "debug"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1.0"}}},
	}
	if _, err := env.kube.CoreV1().Pods("debug").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A privileged debug container is denied: kubectl debug cannot bypass the policies.
	_, stderr, err := env.cluster.Kubectl(ctx, "debug", "app", "-n", "debug", "--image=busybox:1.36", "--profile=sysadmin", "-c", "root-shell")
	if err == nil || !strings.Contains(stderr, "[pss-baseline-privileged] spec.ephemeralContainers[0].securityContext.privileged") {
		t.Fatalf("sysadmin debug container: %v\n%s", err, stderr)
	}
	// A plain one is admitted, hardened by the mutating webhook.
	if _, stderr, err := env.cluster.Kubectl(ctx, "debug", "app", "-n", "debug", "--image=busybox:1.36", "-c", "shell"); err != nil {
		t.Fatalf("plain debug container: %v\n%s", err, stderr)
	}
	got, err := env.kube.CoreV1().Pods("debug").Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.EphemeralContainers) != 1 {
		t.Fatalf("ephemeral containers: %+v", got.Spec.EphemeralContainers)
	}
	sc := got.Spec.EphemeralContainers[0].SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || sc.Capabilities.Drop[0] != "ALL" {
		t.Fatalf("debug container not hardened: %+v", sc)
	}
}

func TestUpdatesAndDeletesWithFinalizers(t *testing.T) {
	teamNamespace(t, "lifecycle")
	ctx := context.Background()
	manifest := strings.Replace(fmt.Sprintf(plainDeployment, "lifecycle"), "metadata: {name: web, namespace: lifecycle}",
		"metadata: {name: web, namespace: lifecycle, finalizers: [example.com/hold]}", 1)
	if _, _, err := apply(t, manifest); err != nil {
		t.Fatal(err)
	}
	// An update that breaks a policy is denied.
	patch := `{"spec":{"template":{"spec":{"hostNetwork":true}}}}`
	_, stderr, err := env.cluster.Kubectl(ctx, "patch", "deployment", "web", "-n", "lifecycle", "--type=strategic", "-p", patch)
	if err == nil || !strings.Contains(stderr, "[pss-baseline-host-namespaces] spec.template.spec.hostNetwork") {
		t.Fatalf("hostNetwork update: %v %s", err, stderr)
	}
	// Deleting: the finalizer keeps the object, with a deletionTimestamp.
	if _, _, err := env.cluster.Kubectl(ctx, "delete", "deployment", "web", "-n", "lifecycle", "--wait=false"); err != nil {
		t.Fatal(err)
	}
	// Spec changes of an object being deleted are still judged.
	_, stderr, err = env.cluster.Kubectl(ctx, "patch", "deployment", "web", "-n", "lifecycle", "--type=strategic", "-p", patch)
	if err == nil || !strings.Contains(stderr, "[pss-baseline-host-namespaces] spec.template.spec.hostNetwork") {
		t.Fatalf("hostNetwork update while deleting: %v %s", err, stderr)
	}
	// Removing the finalizer is always allowed, and the object goes.
	if _, stderr, err := env.cluster.Kubectl(ctx, "patch", "deployment", "web", "-n", "lifecycle", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`); err != nil {
		t.Fatalf("removing the finalizer: %v %s", err, stderr)
	}
	eventually(t, 30*time.Second, func() error {
		_, err := env.kube.AppsV1().Deployments("lifecycle").Get(ctx, "web", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %w", err)
	})
}

func TestNeverIntercepted(t *testing.T) {
	ctx := context.Background()
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate"}, &vwc); err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate"}, &mwc); err != nil {
		t.Fatal(err)
	}
	v, m := vwc.Webhooks[0], mwc.Webhooks[0]
	if *v.FailurePolicy != admissionregistrationv1.Fail || *m.FailurePolicy != admissionregistrationv1.Ignore ||
		*v.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun || *m.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun ||
		*v.MatchPolicy != admissionregistrationv1.Equivalent || *m.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy ||
		*v.TimeoutSeconds > 10 || *m.TimeoutSeconds > 10 {
		t.Fatalf("safety defaults: validating %+v mutating %+v", v, m)
	}
	for _, wh := range []struct {
		name  string
		sel   *metav1.LabelSelector
		rules []admissionregistrationv1.RuleWithOperations
	}{{"validating", v.NamespaceSelector, v.Rules}, {"mutating", m.NamespaceSelector, m.Rules}} {
		excluded := strings.Join(wh.sel.MatchExpressions[0].Values, ",")
		for _, ns := range []string{"kube-system", "tollgate-system"} {
			if !strings.Contains(excluded, ns) {
				t.Errorf("%s: namespace %s not excluded (%s)", wh.name, ns, excluded)
			}
		}
		for _, r := range wh.rules {
			for _, res := range r.Resources {
				switch res {
				case "leases", "validatingwebhookconfigurations", "mutatingwebhookconfigurations", "tokenreviews", "subjectaccessreviews", "*", "*/*", "pods/status", "deployments/status", "pods/exec", "pods/eviction":
					t.Errorf("%s intercepts %s", wh.name, res)
				}
			}
		}
	}
	// Functionally: a privileged pod in kube-system and leases are untouched.
	if _, err := env.kube.CoreV1().Pods("kube-system").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "system-agent", Namespace: "kube-system"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "agent:1", SecurityContext: &corev1.SecurityContext{
			Privileged: func() *bool { b := true; return &b }(),
		}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("kube-system pod: %v", err)
	}
	if _, err := env.kube.CoordinationV1().Leases("default").Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("lease: %v", err)
	}
}

func TestNamespaceCreatedAnInstantAgo(t *testing.T) {
	// The informer may not have seen the namespace yet: the live GET fills in.
	for i := range 5 {
		name := fmt.Sprintf("fresh-%d", i)
		teamNamespace(t, name)
		out, _, err := apply(t, fmt.Sprintf(plainDeployment, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_ = out
		if team := kubectl(t, "get", "deployment", "web", "-n", name, "-o", "jsonpath={.metadata.labels.team}"); team != "payments" {
			t.Fatalf("%s: team label %q: the namespace was read as having no labels", name, team)
		}
	}
}

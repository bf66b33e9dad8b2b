package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// The CRDs of the optional integrations, taken from the projects' own
// modules (the Go module proxy has them): cert-manager's Certificate and
// Issuer, prometheus-operator's ServiceMonitor and PrometheusRule, whose
// real schemas the full release's objects are validated against; and
// openreports.io's Report kinds, for the RBAC checks (wgpolicyk8s.io's come
// from testdata/crds).
var integrationCRDs = []struct{ module, file string }{
	{"github.com/cert-manager/cert-manager@v1.21.2", "deploy/crds/cert-manager.io_certificates.yaml"},
	{"github.com/cert-manager/cert-manager@v1.21.2", "deploy/crds/cert-manager.io_issuers.yaml"},
	{"github.com/prometheus-operator/prometheus-operator@v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"},
	{"github.com/prometheus-operator/prometheus-operator@v0.85.0", "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"},
	{"github.com/openreports/reports-api@v0.2.1", "config/crd/openreports.io_reports.yaml"},
	{"github.com/openreports/reports-api@v0.2.1", "config/crd/openreports.io_clusterreports.yaml"},
}

// TestInstall applies the rendered chart to a real API server and runs
// `tollgate serve` with the chart's arguments, files and service account:
//
//   - every object of every release is accepted by kubectl apply
//     --server-side, first with --dry-run=server; the CRDs establish;
//   - the service account may do what the server needs and nothing else
//     (kubectl auth can-i --as);
//   - before the server runs, the validating webhook fails closed, except in
//     kube-system and the release namespace;
//   - the server, as the service account, creates its CA, patches caBundle
//     into the chart's configurations, takes the leader Lease, writes
//     TollgatePolicy and Budget status, creates a Gatekeeper template's
//     constraint CRD and an Event on a broken one, audits a workload from
//     before it into a Report, and is never forbidden anything;
//   - the README's path: a labelled namespace, a Deployment admitted and
//     hardened, a privileged one denied;
//   - the emergency exit: with the server gone, deleting the validating
//     configuration lets changes through again.
//
// There is no kubelet or kube-proxy here, so the server runs as a process
// and the configurations' Service reference is swapped for its loopback
// URL; everything else is the chart's.
func TestInstall(t *testing.T) {
	tollgate := binary(t, "tollgate", "run make build")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	logs := &proc.Buffer{}
	c, err := cluster.Start(ctx, cluster.Options{Log: logs})
	if err != nil {
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	k := &kubectl{t: t, c: c}

	full := render(t, fullRelease)
	off := render(t, offRelease)
	def := render(t, defaultRelease)

	// The full release first: its webhooks only see namespaces labelled
	// for the rollout, so they stand in nobody's way. Its CRDs are managed
	// outside the release (crds.enabled=false).
	if !t.Run("full release: CRDs from elsewhere, then every object accepted", func(t *testing.T) {
		k.t = t
		var crds strings.Builder
		for _, ic := range integrationCRDs {
			crds.WriteString(readModuleFile(t, ic.module, ic.file))
			crds.WriteString("\n")
		}
		wg, err := os.ReadFile(filepath.Join(repoRoot(t), "test", "chart", "testdata", "crds", "wgpolicyk8s.io.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		crds.WriteString("---\n")
		crds.Write(wg)
		k.applyAndEstablish(crds.String())
		k.applyAndEstablish(generatedCRDs(t))
		for _, ns := range []string{fullRelease.namespace, "payments", "search", "legacy"} {
			k.namespace(ns)
		}
		// A workload from before Tollgate, for the audit to find.
		k.run("apply", "-f", "-", deployment("legacy", "node-agent", true))
		k.apply(full)
	}) {
		return
	}
	if !t.Run("release with every option off: every object accepted", func(t *testing.T) {
		k.t = t
		k.namespace(offRelease.namespace)
		k.apply(off)
	}) {
		return
	}
	if !t.Run("default release: every object accepted, CRDs established", func(t *testing.T) {
		k.t = t
		for _, ns := range []string{defaultRelease.namespace, "fails-closed", "shop-budget"} {
			k.namespace(ns)
		}
		k.apply(def)
		for name := range crdObjects(t) {
			k.run("wait", "--for=condition=Established", "--timeout=60s", "crd/"+name)
		}
		// Applying the same render again, as an upgrade would, changes nothing.
		out := k.run("apply", "--server-side", "--field-manager=helm", "-f", "-", def)
		if strings.Contains(out, "created") {
			t.Errorf("re-applying created objects:\n%s", out)
		}
	}) {
		return
	}

	t.Run("RBAC", func(t *testing.T) {
		k.t = t
		checkRBAC(t, k)
	})

	if !t.Run("before the server runs, the validating webhook fails closed", func(t *testing.T) {
		k.t = t
		for _, obj := range []string{deployment("fails-closed", "web", false), namespace("new-team")} {
			_, stderr, err := c.KubectlWithStdin(ctx, obj, "apply", "-f", "-")
			if err == nil || !strings.Contains(stderr, `failed calling webhook "validate.tollgate.dev"`) {
				t.Fatalf("not refused while Tollgate is down (err %v):\n%s\n%s", err, obj, stderr)
			}
		}
		// Never kube-system or Tollgate's own namespace.
		for _, ns := range []string{"kube-system", defaultRelease.namespace} {
			k.run("apply", "-f", "-", deployment(ns, "still-works", false))
		}
	}) {
		return
	}

	srv := &server{}
	t.Cleanup(srv.stop)
	if !t.Run("tollgate serve runs with the chart's arguments as its service account", func(t *testing.T) {
		k.t = t
		// A Budget and a policy for the server to write status on.
		k.run("apply", "-f", "-", `apiVersion: tollgate.dev/v1alpha1
kind: Budget
metadata: {name: monthly, namespace: shop-budget}
spec: {amount: "100", currency: USD, period: monthly}
`)
		srv.start(t, k, tollgate, def)
		waitFor(t, time.Minute, "the server to be ready", func() bool {
			return strings.Contains(srv.log(), "ready: admission is served")
		})

		ca := k.run("get", "secret", "-n", defaultRelease.namespace, "tollgate-webhook-tls", "-o", "jsonpath={.data.ca\\.crt}")
		if ca == "" {
			t.Fatal("no CA in the certificate Secret")
		}
		for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
			waitFor(t, 30*time.Second, "caBundle in the "+kind, func() bool {
				return k.run("get", kind, "tollgate", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}") == ca
			})
		}
		holder := k.run("get", "lease", "-n", defaultRelease.namespace, "tollgate-leader", "-o", "jsonpath={.spec.holderIdentity}")
		if holder == "" {
			t.Error("the leader Lease has no holder")
		}
		waitFor(t, 30*time.Second, "the budget scan", func() bool {
			return k.run("get", "budget", "-n", "shop-budget", "monthly", "-o", "jsonpath={.status.lastScanTime}") != ""
		})
		k.run("apply", "-f", "-", `apiVersion: tollgate.dev/v1alpha1
kind: TollgatePolicy
metadata: {name: no-team-change}
spec:
  action: warn
  rego: |
    # METADATA
    # title: Team label is immutable
    # custom:
    #   id: no-team-change
    #   severity: high
    #   scope: object
    #   kinds: [apps/Deployment]
    package corp.no_team_change

    violation contains {"msg": "the team label may not change", "path": ["metadata", "labels", "team"]} if {
      input.operation == "UPDATE"
      input.oldObject.metadata.labels.team != object.get(input.object.metadata, ["labels", "team"], "")
    }
`)
		waitFor(t, 30*time.Second, "the TollgatePolicy's status", func() bool {
			return k.run("get", "tollgatepolicy", "no-team-change", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`) == "True"
		})
		// A Gatekeeper template: the server, as the service account, creates
		// its constraint CRD; a broken one is a Warning Event.
		k.run("apply", "-f", "-", gatekeeperTemplate("teamrequiredlabels", "TeamRequiredLabels", "not input.review.object.metadata.labels[label]"))
		k.run("apply", "-f", "-", gatekeeperTemplate("teambroken", "TeamBroken", "not input[.review"))
		waitFor(t, time.Minute, "the constraint CRD", func() bool {
			out, _, _ := c.Kubectl(ctx, "get", "crd", "teamrequiredlabels.constraints.gatekeeper.sh", "-o", `jsonpath={.metadata.labels.app\.kubernetes\.io/managed-by}`)
			return out == "tollgate"
		})
		// Constraints of the new kind: read, never written. (kubectl can only
		// ask about a kind once it is served.)
		for _, tc := range []struct{ args, want string }{
			{"list teamrequiredlabels.constraints.gatekeeper.sh", "yes"},
			{"watch teamrequiredlabels.constraints.gatekeeper.sh", "yes"},
			{"update teamrequiredlabels.constraints.gatekeeper.sh --subresource=status", "no"},
			{"delete teamrequiredlabels.constraints.gatekeeper.sh", "no"},
		} {
			sa := "system:serviceaccount:" + defaultRelease.namespace + ":tollgate"
			out, _, _ := c.Kubectl(ctx, append([]string{"auth", "can-i", "--as", sa}, strings.Fields(tc.args)...)...)
			if got := strings.TrimSpace(out); got != tc.want {
				t.Errorf("can-i %s = %q, want %s", tc.args, got, tc.want)
			}
		}
		waitFor(t, time.Minute, "the Event on the broken template", func() bool {
			out, _, _ := c.Kubectl(ctx, "get", "events", "-n", "default", "--field-selector", "involvedObject.name=teambroken", "-o", "jsonpath={.items[*].reason}")
			return strings.Contains(out, "NotLoaded")
		})
		// The background audit, as the service account: it lists what the
		// policies match and writes the namespace's Report.
		waitFor(t, time.Minute, "the audit's Report on the Deployment from before Tollgate", func() bool {
			out, _, _ := c.Kubectl(ctx, "get", "reports.openreports.io", "-n", "legacy", "tollgate", "-o", "jsonpath={.results[*].policy}")
			return strings.Contains(out, "pss-baseline-privileged")
		})
	}) {
		t.Logf("tollgate serve log:\n%s", tail(srv.log(), 8<<10))
		return
	}

	// The README's "Install with Helm" commands, after helm install.
	t.Run("the README's path: a labelled namespace, a Deployment admitted, a privileged one denied", func(t *testing.T) {
		k.t = t
		// A namespace without its ownership labels is refused.
		_, stderr, err := c.KubectlWithStdin(ctx, "", "create", "namespace", "shop")
		if err == nil || !strings.Contains(stderr, "ownership-labels") {
			t.Errorf("a namespace without ownership labels was not denied (err %v):\n%s", err, stderr)
		}
		t.Logf("kubectl create namespace shop:\n%s", stderr)
		// The rest as docs/install.md shows it: the namespace from a here
		// document, then the two Deployments, from the repository root.
		out, err := console(t, c, readmeNamespace, "apply", "-f", "-")
		if err != nil {
			t.Fatalf("the labelled namespace: %v\n%s", err, out)
		}
		command, rest, _ := strings.Cut(out, "\n")
		transcript := command + " <<'EOF'\n" + readmeNamespace + "EOF\n" + rest
		out, err = console(t, c, "", "-n", "shop", "create", "deployment", "web", "--image=nginx:1.27")
		if err != nil {
			t.Fatalf("the Deployment: %v\n%s", err, out)
		}
		transcript += out
		injected := k.run("-n", "shop", "get", "deployment", "web", "-o", `jsonpath={.metadata.annotations.tollgate\.dev/injected}`)
		sc := k.run("-n", "shop", "get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].securityContext}")
		if injected == "" || !strings.Contains(sc, `"allowPrivilegeEscalation":false`) {
			t.Errorf("the Deployment was not hardened by the mutating webhook: injected %q, securityContext %s", injected, sc)
		}
		out, err = console(t, c, "", "apply", "-f", "test/manifests/privileged.yaml")
		if err == nil || !strings.Contains(out, `admission webhook "validate.tollgate.dev" denied the request`) ||
			!strings.Contains(out, "pss-baseline-privileged") {
			t.Errorf("the privileged Deployment was not denied by Tollgate (err %v):\n%s", err, out)
		}
		transcript += out
		docexample.Check(t, repoRoot(t), "e2e-chart-install-shop", transcript)
	})

	t.Run("the server is never forbidden anything and logs no error", func(t *testing.T) {
		if !strings.Contains(srv.log(), "serving admission") {
			t.Fatalf("no server log:\n%s", srv.log())
		}
		for _, line := range strings.Split(srv.log(), "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") || strings.Contains(line, `"level":"ERROR"`) {
				t.Errorf("tollgate serve: %s", line)
			}
		}
	})

	t.Run("emergency exit", func(t *testing.T) {
		k.t = t
		srv.stop()
		_, stderr, err := c.KubectlWithStdin(ctx, deployment("shop", "hotfix", false), "apply", "-f", "-")
		if err == nil || !strings.Contains(stderr, `failed calling webhook "validate.tollgate.dev"`) {
			t.Fatalf("with Tollgate down a Deployment was not refused (err %v):\n%s", err, stderr)
		}
		k.run("delete", "validatingwebhookconfiguration", "tollgate")
		k.run("apply", "-f", "-", deployment("shop", "hotfix", false))
		// The mutating webhook is still there, failing open.
		k.run("get", "mutatingwebhookconfiguration", "tollgate")
		// helm upgrade puts the configuration back.
		vwc := toYAML(t, find(t, objects(t, def), "ValidatingWebhookConfiguration", "tollgate"))
		k.run("apply", "--server-side", "--field-manager=helm", "-f", "-", vwc)
		k.run("get", "validatingwebhookconfiguration", "tollgate")
		k.run("delete", "validatingwebhookconfiguration", "tollgate")
	})

	// Helm itself: install, then an upgrade after the server wrote caBundle
	// into the configurations (Helm's three-way merge must keep it).
	t.Run("helm install and upgrade keep the caBundle the server wrote", func(t *testing.T) {
		k.t = t
		kc := "--kubeconfig=" + c.KubeconfigPath()
		args := func(verb string, more ...string) []string {
			return append([]string{verb, "canary", chartDir(t), "--namespace", "tollgate-canary", kc}, more...)
		}
		out, _, err := helm(t, args("install", "--create-namespace", "--set", "crds.enabled=false")...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("helm install:\n%s", out)
		if !strings.Contains(out, "kubectl delete validatingwebhookconfiguration canary-tollgate") {
			t.Errorf("helm install's notes lack the emergency exit:\n%s", out)
		}
		ca := k.run("get", "secret", "-n", defaultRelease.namespace, "tollgate-webhook-tls", "-o", "jsonpath={.data.ca\\.crt}")
		for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
			// What the rotator does: a merge patch of the webhooks, caBundle set.
			var obj map[string]any
			if err := json.Unmarshal([]byte(k.run("get", kind, "canary-tollgate", "-o", "json")), &obj); err != nil {
				t.Fatal(err)
			}
			webhooks := obj["webhooks"].([]any)
			webhooks[0].(map[string]any)["clientConfig"].(map[string]any)["caBundle"] = ca
			patch, _ := json.Marshal(map[string]any{"webhooks": webhooks})
			k.run("patch", kind, "canary-tollgate", "--type=merge", "--field-manager=tollgate", "-p", string(patch))
			if got := k.run("get", kind, "canary-tollgate", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"); got != ca {
				t.Fatalf("patching caBundle into %s canary-tollgate did not take", kind)
			}
		}
		if _, _, err := helm(t, args("upgrade", "--reuse-values", "--set", "replicas=2", "--set", "webhooks.validating.timeoutSeconds=4")...); err != nil {
			t.Fatal(err)
		}
		if got := k.run("get", "deployment", "-n", "tollgate-canary", "canary-tollgate", "-o", "jsonpath={.spec.replicas}"); got != "2" {
			t.Errorf("after helm upgrade: %s replicas", got)
		}
		if got := k.run("get", "validatingwebhookconfiguration", "canary-tollgate", "-o", "jsonpath={.webhooks[0].timeoutSeconds}"); got != "4" {
			t.Errorf("after helm upgrade: timeoutSeconds %s", got)
		}
		for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
			if got := k.run("get", kind, "canary-tollgate", "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"); got != ca {
				t.Errorf("helm upgrade dropped the caBundle of %s canary-tollgate", kind)
			}
		}
		if _, _, err := helm(t, "uninstall", "canary", "--namespace", "tollgate-canary", kc); err != nil {
			t.Fatal(err)
		}
	})
}

// checkRBAC asks the API server what each release's service account may do.
func checkRBAC(t *testing.T, k *kubectl) {
	sa := func(r release, fullname string) string {
		return "system:serviceaccount:" + r.namespace + ":" + fullname
	}
	def, full, lean := sa(defaultRelease, "tollgate"), sa(fullRelease, "gate"), sa(offRelease, "lean-tollgate")
	ns := defaultRelease.namespace
	for _, tc := range []struct {
		as      string
		allowed bool
		args    string // kubectl auth can-i arguments
	}{
		// What tollgate serve needs.
		{def, true, "watch namespaces"},
		{def, true, "get namespaces"},
		{def, true, "list pods --all-namespaces"},
		{def, true, "watch deployments.apps --all-namespaces"},
		{def, true, "list cronjobs.batch --all-namespaces"},
		{def, true, "list jobs.batch --all-namespaces"},
		{def, true, "list nodes"},
		{def, true, "list persistentvolumeclaims --all-namespaces"},
		{def, true, "watch tollgatepolicies.tollgate.dev"},
		{def, true, "watch tollgateexceptions.tollgate.dev --all-namespaces"},
		{def, true, "list budgets.tollgate.dev --all-namespaces"},
		{def, true, "update budgets.tollgate.dev --subresource=status -n shop"},
		{def, true, "update tollgatepolicies.tollgate.dev --subresource=status"},
		{def, true, "update tollgateimagepolicies.tollgate.dev --subresource=status"},
		{def, true, "get validatingwebhookconfigurations.admissionregistration.k8s.io/tollgate"},
		{def, true, "patch validatingwebhookconfigurations.admissionregistration.k8s.io/tollgate"},
		{def, true, "patch mutatingwebhookconfigurations.admissionregistration.k8s.io/tollgate"},
		{def, true, "create leases.coordination.k8s.io -n " + ns},
		{def, true, "update leases.coordination.k8s.io/tollgate-leader -n " + ns},
		{def, true, "create secrets -n " + ns},
		{def, true, "update secrets/tollgate-webhook-tls -n " + ns},
		{def, true, "get secrets/budget-webhooks -n " + ns},
		{def, true, "get secrets/pull-secret -n shop"},
		{def, true, "get serviceaccounts/default -n shop"},
		{def, true, "create reports.openreports.io -n shop"},
		{def, true, "watch reports.openreports.io --all-namespaces"},
		{def, true, "delete policyreports.wgpolicyk8s.io -n shop"},
		{def, true, "create clusterreports.openreports.io"},
		{def, true, "create events -n " + ns},
		{def, true, "list constrainttemplates.templates.gatekeeper.sh"},
		{def, true, "watch constrainttemplates.templates.gatekeeper.sh"},
		{def, true, "create customresourcedefinitions.apiextensions.k8s.io"},
		{def, true, "get customresourcedefinitions.apiextensions.k8s.io/teamrequiredlabels.constraints.gatekeeper.sh"},
		{def, true, "update customresourcedefinitions.apiextensions.k8s.io/teamrequiredlabels.constraints.gatekeeper.sh"},
		{def, true, "create events.events.k8s.io -n default"},
		{def, true, "patch events.events.k8s.io -n default"},
		{def, true, "watch tollgateprofiles.tollgate.dev"},
		// Namespace defaults: generated, restored, and deleted when a
		// profile drops them; only those of Tollgate's name are changed.
		{def, true, "watch resourcequotas --all-namespaces"},
		{def, true, "create resourcequotas -n shop"},
		{def, true, "patch resourcequotas/tollgate-defaults -n shop"},
		{def, true, "update limitranges/tollgate-defaults -n shop"},
		{def, true, "delete limitranges/tollgate-defaults -n shop"},
		{def, true, "watch networkpolicies.networking.k8s.io --all-namespaces"},
		{def, true, "patch networkpolicies.networking.k8s.io/tollgate-defaults -n shop"},
		{def, true, "create budgets.tollgate.dev -n shop"},
		{def, true, "delete budgets.tollgate.dev/tollgate-defaults -n shop"},
		{def, false, "patch resourcequotas/team-quota -n shop"},
		{def, false, "delete resourcequotas -n shop"},
		{def, false, "update networkpolicies.networking.k8s.io/allow-ingress -n shop"},
		{def, false, "delete budgets.tollgate.dev/team-budget -n shop"},
		{lean, false, "create resourcequotas -n shop"},
		{lean, false, "patch resourcequotas/tollgate-defaults -n shop"},
		{lean, false, "create budgets.tollgate.dev -n shop"},
		{def, true, "create tokenreviews.authentication.k8s.io"},        // who reads /metrics
		{def, true, "create subjectaccessreviews.authorization.k8s.io"}, // and may they
		{def, false, "get tokenreviews.authentication.k8s.io"},
		// What it must never do.
		{def, false, "list secrets --all-namespaces"},
		{def, false, "watch secrets --all-namespaces"},
		{def, false, "list secrets -n " + ns},
		{def, false, "watch secrets -n " + ns},
		{def, false, "create secrets -n kube-system"},
		{def, false, "update secrets -n shop"},
		{def, false, "update secrets/other -n " + ns},
		{def, false, "delete secrets/tollgate-webhook-tls -n " + ns},
		{def, false, "create namespaces"},
		{def, false, "delete namespaces"},
		{def, false, "update namespaces"},
		{def, false, "create pods -n shop"},
		{def, false, "update deployments.apps -n shop"},
		{def, false, "delete pods -n shop"},
		{def, false, "create validatingwebhookconfigurations.admissionregistration.k8s.io"},
		// The audit reads the admission configuration (and ConfigMaps,
		// for credentials in them) as evidence; it changes neither.
		{def, true, "list validatingwebhookconfigurations.admissionregistration.k8s.io"},
		{def, false, "delete validatingwebhookconfigurations.admissionregistration.k8s.io/tollgate"},
		{def, false, "patch validatingwebhookconfigurations.admissionregistration.k8s.io/other"},
		{def, false, "patch mutatingwebhookconfigurations.admissionregistration.k8s.io/other"},
		{def, false, "update leases.coordination.k8s.io/kube-controller-manager -n kube-system"},
		{def, false, "update leases.coordination.k8s.io/other -n " + ns},
		{def, false, "create leases.coordination.k8s.io -n shop"},
		{def, false, "create tollgatepolicies.tollgate.dev"},
		{def, false, "update tollgatepolicies.tollgate.dev"},
		{def, false, "update tollgateexceptions.tollgate.dev -n shop"},
		{def, false, "delete budgets.tollgate.dev -n shop"},
		// An execution cluster of a fleet keeps Budget mirrors.
		{full, true, "update budgets.tollgate.dev -n shop"},
		{full, true, "delete budgets.tollgate.dev -n shop"},
		{def, true, "get configmaps -n shop"},
		{def, false, "update configmaps -n shop"},
		{def, false, "create clusterrolebindings.rbac.authorization.k8s.io"},
		{def, false, "impersonate users"},
		{def, false, "create serviceaccounts/token -n shop"},
		// Gatekeeper's objects are read, never written; CRDs are never
		// listed, watched or deleted.
		{def, false, "update constrainttemplates.templates.gatekeeper.sh"},
		{def, false, "delete customresourcedefinitions.apiextensions.k8s.io/teamrequiredlabels.constraints.gatekeeper.sh"},
		{def, false, "list customresourcedefinitions.apiextensions.k8s.io"},
		{def, false, "watch customresourcedefinitions.apiextensions.k8s.io"},
		{def, false, "patch customresourcedefinitions.apiextensions.k8s.io/tollgatepolicies.tollgate.dev"},
		{def, false, "create events.events.k8s.io -n shop"},
		// Pull secrets only in the listed namespaces; no certificate
		// Secret or webhook configuration writes with cert-manager.
		{full, true, "get secrets/pull-secret -n search"},
		{full, false, "get secrets/pull-secret -n shop"},
		{full, true, "get secrets/pull-secret -n payments"},
		{full, false, "get secrets/pull-secret -n kube-system"},
		{full, false, "create secrets -n " + fullRelease.namespace},
		{full, false, "patch validatingwebhookconfigurations.admissionregistration.k8s.io/gate"},
		{full, true, "list ingresses.networking.k8s.io --all-namespaces"},
		{full, true, "create leases.coordination.k8s.io -n " + fullRelease.namespace},
		// Image scanning: ImageScans and their status; SBOM ConfigMaps in
		// its own namespace only.
		{full, true, "create imagescans.tollgate.dev"},
		{full, true, "delete imagescans.tollgate.dev"},
		{full, true, "watch imagescans.tollgate.dev"},
		{full, true, "update imagescans.tollgate.dev --subresource=status"},
		{full, true, "create configmaps -n " + fullRelease.namespace},
		{full, true, "delete configmaps -n " + fullRelease.namespace},
		{full, false, "create configmaps -n shop"},
		{full, true, "list configmaps --all-namespaces"},
		{full, false, "update imagescans.tollgate.dev"},
		{def, false, "create imagescans.tollgate.dev"},
		{def, false, "create configmaps -n " + ns},
		// readPullSecrets and the audit off.
		{lean, false, "get secrets/pull-secret -n shop"},
		{lean, false, "get serviceaccounts/default -n shop"},
		{lean, true, "get secrets/budget-webhooks -n " + offRelease.namespace},
		{lean, false, "create reports.openreports.io -n shop"},
		{lean, true, "list pods --all-namespaces"},
		// Beside Gatekeeper (gatekeeper.createConstraintCRDs=false): no CRD writes.
		{lean, false, "create customresourcedefinitions.apiextensions.k8s.io"},
		{lean, false, "update customresourcedefinitions.apiextensions.k8s.io/teamrequiredlabels.constraints.gatekeeper.sh"},
		{lean, true, "list constrainttemplates.templates.gatekeeper.sh"},
	} {
		want := map[bool]string{true: "yes", false: "no"}[tc.allowed]
		args := append([]string{"auth", "can-i", "--as", tc.as}, strings.Fields(tc.args)...)
		stdout, _, _ := k.c.Kubectl(context.Background(), args...) // "no" exits 1
		if got := strings.TrimSpace(stdout); got != want {
			t.Errorf("%s: can-i %s = %q, want %s", tc.as, tc.args, got, want)
		}
	}
}

// kubectl runs kubectl against the test cluster as the admin, failing the
// current test on an error.
type kubectl struct {
	t *testing.T
	c *cluster.Cluster
}

// run runs kubectl; a last argument that starts with a YAML document is
// its standard input.
func (k *kubectl) run(args ...string) string {
	k.t.Helper()
	stdin := ""
	if n := len(args); n > 0 && (strings.HasPrefix(args[n-1], "apiVersion:") || strings.HasPrefix(args[n-1], "---")) {
		stdin, args = args[n-1], args[:n-1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, _, err := k.c.KubectlWithStdin(ctx, stdin, args...)
	if err != nil {
		k.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// apply applies a render server-side, first as a server dry run, and
// checks that every object in it was accepted both times.
func (k *kubectl) apply(stream string) {
	k.t.Helper()
	n := len(objects(k.t, stream))
	for _, dry := range []bool{true, false} {
		args := []string{"apply", "--server-side", "--field-manager=helm"}
		if dry {
			args = append(args, "--dry-run=server")
		}
		out := k.run(append(args, "-f", "-", stream)...)
		if got := strings.Count(out, "\n") + 1; got != n {
			k.t.Errorf("kubectl %s: %d objects accepted, want %d:\n%s", strings.Join(args, " "), got, n, out)
		}
		if dry && !strings.Contains(out, "(server dry run)") {
			k.t.Errorf("not a server dry run:\n%s", out)
		}
	}
}

// console runs kubectl from the repository root with stdin, as a user
// would with the cluster's kubeconfig in KUBECONFIG, and returns the
// transcript: "$ kubectl ARGS", then what it printed (stdout and stderr).
func console(t *testing.T, c *cluster.Cluster, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return c.Transcript(ctx, repoRoot(t), stdin, args...)
}

// applyAndEstablish applies CRDs and waits until each is established.
func (k *kubectl) applyAndEstablish(crds string) {
	k.t.Helper()
	k.apply(crds)
	for _, o := range objects(k.t, crds) {
		k.run("wait", "--for=condition=Established", "--timeout=60s", "crd/"+name(o))
	}
}

// readmeNamespace is the team namespace of the README's install section.
const readmeNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: payments, owner: jdoe, cost-center: CC-1234}
`

// namespace creates a namespace carrying the ownership labels.
func (k *kubectl) namespace(name string) {
	k.t.Helper()
	k.run("apply", "-f", "-", namespace(name))
}

// namespace is a Namespace carrying the ownership labels.
func namespace(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels: {team: platform, owner: platform-team, cost-center: CC-0001}
`, name)
}

// generatedCRDs are the CRDs make generate writes, as one stream.
func generatedCRDs(t *testing.T) string {
	files, _ := filepath.Glob(filepath.Join(chartDir(t), "crds", "*.yaml"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("---")) {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	return b.String()
}

// readModuleFile reads a file of a module version from the module cache,
// downloading it through the Go module proxy the first time.
func readModuleFile(t *testing.T, module, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, _, err := run(ctx, t.TempDir(), nil, "", "go", "mod", "download", "-json", module)
	if err != nil {
		t.Fatalf("downloading %s: %v", module, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", module, err, info.Error)
	}
	data, err := os.ReadFile(filepath.Join(info.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// gatekeeperTemplate is a ConstraintTemplate of kind requiring the labels
// its constraints list; cond is the Rego condition on a label.
func gatekeeperTemplate(name, kind, cond string) string {
	return fmt.Sprintf(`apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: %[1]s}
spec:
  crd:
    spec:
      names: {kind: %[2]s}
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels: {type: array, items: {type: string}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package %[1]s

        violation[{"msg": sprintf("label %%v is missing", [label])}] {
          label := input.parameters.labels[_]
          %[3]s
        }
`, name, kind, cond)
}

// deployment is a Deployment in ns; privileged makes it break the
// baseline Pod Security Standard.
func deployment(ns, name string, privileged bool) string {
	sc := ""
	if privileged {
		sc = "\n          securityContext: {privileged: true}"
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      containers:
        - name: app
          image: nginx:1.27%[3]s
`, ns, name, sc)
}

// server is `tollgate serve` run as a process with the arguments of the
// chart's Deployment.
type server struct {
	dir  string // the pod's files
	cmd  *exec.Cmd
	out  proc.Buffer
	once sync.Once
	done chan struct{}
}

// start runs bin/tollgate with the rendered container's arguments: files
// the pod mounts from ConfigMaps are written to a temporary directory,
// the API server is reached with a token of the chart's service account,
// and the webhook configurations are pointed at the process.
func (s *server) start(t *testing.T, k *kubectl, bin, render string) {
	t.Helper()
	objs := objects(t, render)
	dep := find(t, objs, "Deployment", "tollgate")
	podSpec := dig(dep, "spec", "template", "spec").(map[string]any)
	container := dig(podSpec, "containers", 0).(map[string]any)
	root, err := os.MkdirTemp("", "tollgate-pod-")
	if err != nil {
		t.Fatal(err)
	}
	s.dir = root

	// Volumes: ConfigMaps written out, the rest empty directories.
	mounts := map[string]string{}
	for _, m := range container["volumeMounts"].([]any) {
		m := m.(map[string]any)
		local := filepath.Join(root, m["mountPath"].(string))
		if err := os.MkdirAll(local, 0o700); err != nil {
			t.Fatal(err)
		}
		mounts[m["mountPath"].(string)] = local
		for _, v := range podSpec["volumes"].([]any) {
			v := v.(map[string]any)
			if v["name"] != m["name"] {
				continue
			}
			if cmName, ok := dig(v, "configMap", "name").(string); ok {
				data, _ := dig(find(t, objs, "ConfigMap", cmName), "data").(map[string]any)
				for file, content := range data {
					if err := os.WriteFile(filepath.Join(local, file), []byte(content.(string)), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	}
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// The image's entrypoint comes first: `tollgate serve`.
	args := imageEntrypoint(t)[1:]
	for _, a := range container["args"].([]any) {
		arg := a.(string)
		for mountPath, local := range mounts {
			arg = strings.Replace(arg, "="+mountPath, "="+local, 1)
		}
		if arg == "--port=9443" {
			arg = fmt.Sprintf("--port=%d", port)
		}
		args = append(args, arg)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d", port)
	args = append(args, "--kubeconfig="+serviceAccountKubeconfig(t, k, root), "--host=127.0.0.1",
		// The serving certificate also names 127.0.0.1, which the API
		// server calls below instead of the Service.
		"--webhook-url="+url)
	for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
		path := map[string]string{"validatingwebhookconfiguration": "/validate", "mutatingwebhookconfiguration": "/mutate"}[kind]
		k.run("patch", kind, "tollgate", "--type=json", "-p",
			fmt.Sprintf(`[{"op":"remove","path":"/webhooks/0/clientConfig/service"},{"op":"add","path":"/webhooks/0/clientConfig/url","value":%q}]`, url+path))
	}

	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), "POD_NAMESPACE="+defaultRelease.namespace)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
}

// stop sends SIGTERM, as the kubelet does, and waits for the server to
// drain and exit (the chart's --shutdown-delay first).
func (s *server) stop() {
	if s.cmd == nil {
		_ = os.RemoveAll(s.dir)
		return
	}
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(time.Minute):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		_ = os.RemoveAll(s.dir)
	})
}

func (s *server) log() string { return s.out.String() }

// serviceAccountKubeconfig writes a kubeconfig holding a token of the
// default release's service account.
func serviceAccountKubeconfig(t *testing.T, k *kubectl, dir string) string {
	t.Helper()
	token := k.run("create", "token", "tollgate", "-n", defaultRelease.namespace, "--duration=1h")
	admin := k.c.Config()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	cfg.AuthInfos["tollgate"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["tollgate"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "tollgate"}
	cfg.CurrentContext = "tollgate"
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

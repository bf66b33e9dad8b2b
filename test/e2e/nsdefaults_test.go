package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/serve"
	"github.com/tollgate-dev/tollgate/nsdefaults"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// pathLabel selects the namespace-defaults server's profiles: a label of
// its own, so that its namespaces stay on the shared server's default
// profile and the shared server's profiles never meet this one's.
const pathLabel = "e2e.tollgate.dev/path"

// nsDefaultsConfig gives the namespace-defaults server two paths beside a
// default that generates nothing, so every other test's namespace is left
// as it is.
const nsDefaultsConfig = `
profiles:
  label: ` + pathLabel + `
  default: unmanaged
  definitions:
    unmanaged:
      description: no generated defaults
    golden:
      description: the supported path
      namespaceDefaults:
        resourceQuota:
          hard: {requests.cpu: "2", limits.cpu: "2", requests.memory: 8Gi, limits.memory: 8Gi, requests.nvidia.com/gpu: "0", requests.storage: 50Gi, pods: "20", count/deployments.apps: "10"}
        limitRange:
          default: {cpu: 500m, memory: 512Mi}
          defaultRequest: {cpu: 250m, memory: 256Mi}
          max: {cpu: "1", memory: 4Gi}
        networkPolicy:
          allowSameNamespace: true
          allowDNS: true
          ingressFromNamespaces: [{kubernetes.io/metadata.name: ingress-nginx}]
          egressCIDRs: [10.20.0.0/16]
      budget: {amount: "2500", thresholds: [80, 100], action: warn}
    innovation:
      description: allowed, but the team is on its own
      notice: "not on the golden path: no platform backups or monitoring"
      namespaceDefaults:
        resourceQuota:
          hard: {requests.cpu: "8", pods: "50"}
        networkPolicy:
          allowDNS: true
    strict:
      description: limits the API server refuses (a minimum above the maximum)
      namespaceDefaults:
        resourceQuota:
          hard: {pods: "5"}
        limitRange:
          min: {cpu: "2"}
          max: {cpu: "1"}
`

// managedObjects lists the objects of the generated kinds in ns that
// carry Tollgate's managed label, as "Kind/name".
func managedObjects(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	for _, gvk := range nsdefaults.Kinds() {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := env.client.List(context.Background(), list, client.InNamespace(ns),
			client.MatchingLabels{nsdefaults.LabelManagedBy: nsdefaults.ManagedBy}); err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			out = append(out, gvk.Kind+"/"+o.GetName())
		}
	}
	slices.Sort(out)
	return out
}

// generatedObject reads one generated object; nil when there is none.
func generatedObject(t *testing.T, gvk schema.GroupVersionKind, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := env.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: nsdefaults.Name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatal(err)
	}
	return u
}

// quotaHard is a ResourceQuota's spec.hard as stored.
func quotaHard(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	var q corev1.ResourceQuota
	if err := env.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &q); err != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range q.Spec.Hard {
		out[string(k)] = v.String()
	}
	return out
}

// pathNamespace creates a namespace on a path of the namespace-defaults
// server ("": its default).
func pathNamespace(t *testing.T, name, path string) {
	t.Helper()
	labels := `"team":"payments","owner":"alice","cost-center":"CC-1234"`
	if path != "" {
		labels += fmt.Sprintf(`,%q:%q`, pathLabel, path)
	}
	if _, stderr, err := apply(t, fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":{%s}}}`, name, labels)); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
}

// nsEvents are the Events on Namespace ns with the reason, by note.
func nsEvents(t *testing.T, ns, reason string) []string {
	t.Helper()
	list, err := env.kube.EventsV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Kind == "Namespace" && e.Regarding.Name == ns && e.Reason == reason {
			out = append(out, e.Note)
		}
	}
	return out
}

// TestNamespaceDefaults: a server with two paths generates exactly each
// path's objects in its namespaces, restores them when someone edits or
// deletes them, follows a namespace to another path, and never touches a
// team's own objects; the quota it generates is enforced by the API
// server's ResourceQuota admission.
func TestNamespaceDefaults(t *testing.T) {
	ctx := context.Background()
	log := &proc.Buffer{}
	stop, port, err := startServer(ctx, serverOptions{
		name: "tollgate-nsdefaults", log: log, decisions: &proc.Buffer{}, unmanaged: true, noAudit: true,
		configName: "tollgate-nsdefaults", config: nsDefaultsConfig,
		namespaceDefaults: &serve.NamespaceDefaultsOptions{Resync: 5 * time.Second},
	})
	if err != nil {
		t.Fatalf("starting the server: %v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("namespace defaults server log (last 8 KiB):\n%s", tail(log.String(), 8<<10))
		}
	})
	metric := func(series, kind string) float64 {
		body := scrape(t, apiServerClient(t), fmt.Sprintf("https://127.0.0.1:%d", port))
		var n float64
		for line := range strings.Lines(body) {
			if strings.HasPrefix(line, series+"{") && strings.Contains(line, `kind="`+kind+`"`) {
				f := strings.Fields(line)
				v, _ := strconv.ParseFloat(f[len(f)-1], 64)
				n += v
			}
		}
		return n
	}

	golden, innovation, plain := "nsd-golden", "nsd-innovation", "nsd-plain"
	// A team's own quota, there before the path is chosen.
	pathNamespace(t, golden, "")
	teamQuota := `{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"team-quota","namespace":"nsd-golden"},"spec":{"hard":{"pods":"100"}}}`
	if _, stderr, err := apply(t, teamQuota); err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	pathNamespace(t, golden, "golden")
	pathNamespace(t, innovation, "innovation")
	pathNamespace(t, plain, "")

	t.Run("each path gets exactly its objects", func(t *testing.T) {
		for ns, want := range map[string][]string{
			golden:     {"Budget/tollgate-defaults", "LimitRange/tollgate-defaults", "NetworkPolicy/tollgate-defaults", "ResourceQuota/tollgate-defaults"},
			innovation: {"NetworkPolicy/tollgate-defaults", "ResourceQuota/tollgate-defaults"},
		} {
			eventually(t, time.Minute, func() error {
				if got := managedObjects(t, ns); !slices.Equal(got, want) {
					return fmt.Errorf("%s has %v, want %v", ns, got, want)
				}
				return nil
			})
		}
		want := map[string]string{"requests.cpu": "2", "limits.cpu": "2", "requests.memory": "8Gi", "limits.memory": "8Gi",
			"requests.nvidia.com/gpu": "0", "requests.storage": "50Gi", "pods": "20", "count/deployments.apps": "10"}
		if got := quotaHard(t, golden, nsdefaults.Name); !maps.Equal(got, want) {
			t.Errorf("golden quota %v, want %v", got, want)
		}
		if got := quotaHard(t, innovation, nsdefaults.Name); !maps.Equal(got, map[string]string{"requests.cpu": "8", "pods": "50"}) {
			t.Errorf("innovation quota %v", got)
		}
		for _, gvk := range nsdefaults.Kinds() {
			if o := generatedObject(t, gvk, golden); o != nil {
				if l := o.GetLabels(); l[nsdefaults.LabelManagedBy] != "tollgate" || l[nsdefaults.LabelProfile] != "golden" {
					t.Errorf("%s labels %v", gvk.Kind, l)
				}
				if !slices.ContainsFunc(o.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool {
					return e.Manager == nsdefaults.FieldManager && e.Operation == "Apply"
				}) {
					t.Errorf("%s was not applied server-side by %s: %+v", gvk.Kind, nsdefaults.FieldManager, o.GetManagedFields())
				}
			}
		}
		// A namespace on the default path, which generates nothing, has
		// nothing.
		if got := managedObjects(t, plain); len(got) != 0 {
			t.Errorf("%s on the default path has %v", plain, got)
		}
		t.Logf("kubectl get resourcequota,limitrange,networkpolicy,budget tollgate-defaults -n %s -o yaml:\n%s", golden,
			kubectl(t, "get", "resourcequota,limitrange,networkpolicy,budget", nsdefaults.Name, "-n", golden, "-o", "yaml"))
	})

	t.Run("the generated quota stops a pod that exceeds it", func(t *testing.T) {
		// The quota controller (kube-controller-manager) fills in the
		// quota's status; admission counts against it.
		eventually(t, time.Minute, func() error {
			var q corev1.ResourceQuota
			if err := env.client.Get(ctx, client.ObjectKey{Namespace: golden, Name: nsdefaults.Name}, &q); err != nil {
				return err
			}
			if _, ok := q.Status.Hard[corev1.ResourceRequestsCPU]; !ok {
				return fmt.Errorf("quota status not computed yet: %+v", q.Status)
			}
			return nil
		})
		for _, name := range []string{"train-1", "train-2"} {
			if _, stderr, err := apply(t, trainingPod(golden, name, "1")); err != nil {
				t.Fatalf("%s within the quota: %v: %s", name, err, stderr)
			}
		}
		_, stderr, err := apply(t, trainingPod(golden, "train-3", "1"))
		if err == nil || !strings.Contains(stderr, "exceeded quota: tollgate-defaults") || !strings.Contains(stderr, "limited: limits.cpu=2,requests.cpu=2") {
			t.Fatalf("a third core: err %v, stderr %s", err, stderr)
		}
		t.Logf("the third pod: %s", strings.TrimSpace(stderr))
	})

	t.Run("edits and deletions are restored", func(t *testing.T) {
		before := metric("tollgate_namespace_defaults_drift_corrections_total", "ResourceQuota")
		// An edit of a value Tollgate manages.
		kubectl(t, "patch", "-n", golden, "resourcequota", nsdefaults.Name, "--type=merge", "-p", `{"spec":{"hard":{"pods":"1000"}}}`)
		eventually(t, time.Minute, func() error {
			if got := quotaHard(t, golden, nsdefaults.Name)["pods"]; got != "20" {
				return fmt.Errorf("pods %q", got)
			}
			return nil
		})
		// A limit someone adds (a GPU for themselves) is taken away.
		kubectl(t, "patch", "-n", golden, "resourcequota", nsdefaults.Name, "--type=merge", "-p", `{"spec":{"hard":{"requests.nvidia.com/gpu":"8","services":"5"}}}`)
		eventually(t, time.Minute, func() error {
			got := quotaHard(t, golden, nsdefaults.Name)
			if got["requests.nvidia.com/gpu"] != "0" || got["services"] != "" {
				return fmt.Errorf("hard %v", got)
			}
			return nil
		})
		// A deletion.
		kubectl(t, "delete", "-n", golden, "resourcequota", nsdefaults.Name)
		eventually(t, time.Minute, func() error {
			if got := quotaHard(t, golden, nsdefaults.Name); got["pods"] != "20" {
				return fmt.Errorf("hard %v", got)
			}
			return nil
		})
		// The managed label taken off: the object is still Tollgate's (it
		// applied it) and gets the label back.
		kubectl(t, "label", "-n", golden, "limitrange", nsdefaults.Name, nsdefaults.LabelManagedBy+"-")
		eventually(t, time.Minute, func() error {
			if l := generatedObject(t, nsdefaults.LimitRange, golden).GetLabels(); l[nsdefaults.LabelManagedBy] != nsdefaults.ManagedBy {
				return fmt.Errorf("limit range labels %v", l)
			}
			return nil
		})
		// The NetworkPolicy's rules replaced by an allow-all.
		kubectl(t, "patch", "-n", golden, "networkpolicy", nsdefaults.Name, "--type=merge", "-p", `{"spec":{"ingress":[{}],"egress":[{}]}}`)
		eventually(t, time.Minute, func() error {
			o := generatedObject(t, nsdefaults.NetworkPolicy, golden)
			if o == nil {
				return fmt.Errorf("no NetworkPolicy")
			}
			in, _, _ := unstructured.NestedSlice(o.Object, "spec", "ingress")
			if len(in) != 2 {
				return fmt.Errorf("ingress %v", in)
			}
			return nil
		})
		if after := metric("tollgate_namespace_defaults_drift_corrections_total", "ResourceQuota"); after != before+3 {
			t.Errorf("drift corrections of the quota went from %v to %v, want 3 more", before, after)
		}
		if n := metric("tollgate_namespace_defaults_drift_corrections_total", "LimitRange"); n != 1 {
			t.Errorf("drift corrections of the limit range: %v, want 1", n)
		}
		if notes := nsEvents(t, golden, "NamespaceDefaultsRestored"); len(notes) == 0 {
			t.Errorf("no NamespaceDefaultsRestored Event on %s", golden)
		}
	})

	t.Run("a namespace moved to another path follows it", func(t *testing.T) {
		kubectl(t, "label", "namespace", golden, "--overwrite", pathLabel+"=innovation")
		eventually(t, time.Minute, func() error {
			if got, want := managedObjects(t, golden), []string{"NetworkPolicy/tollgate-defaults", "ResourceQuota/tollgate-defaults"}; !slices.Equal(got, want) {
				return fmt.Errorf("%v, want %v", got, want)
			}
			if got := quotaHard(t, golden, nsdefaults.Name); !maps.Equal(got, map[string]string{"requests.cpu": "8", "pods": "50"}) {
				return fmt.Errorf("quota %v", got)
			}
			if l := generatedObject(t, nsdefaults.NetworkPolicy, golden).GetLabels(); l[nsdefaults.LabelProfile] != "innovation" {
				return fmt.Errorf("network policy labels %v", l)
			}
			return nil
		})
		if metric("tollgate_namespace_defaults_deleted_total", "LimitRange") < 1 || metric("tollgate_namespace_defaults_deleted_total", "Budget") < 1 {
			t.Errorf("deletions not counted")
		}
		// Back on the default path: nothing generated is left.
		kubectl(t, "label", "namespace", golden, pathLabel+"-")
		eventually(t, time.Minute, func() error {
			if got := managedObjects(t, golden); len(got) != 0 {
				return fmt.Errorf("%v left", got)
			}
			return nil
		})
	})

	t.Run("what is not Tollgate's is never touched", func(t *testing.T) {
		// The team's quota, through every pass above.
		var q corev1.ResourceQuota
		if err := env.client.Get(ctx, client.ObjectKey{Namespace: golden, Name: "team-quota"}, &q); err != nil {
			t.Fatal(err)
		}
		if got := q.Spec.Hard[corev1.ResourcePods]; got.String() != "100" || len(q.Labels) != 0 {
			t.Errorf("team quota changed: %+v", q)
		}
		for _, e := range q.ManagedFields {
			if e.Manager == nsdefaults.FieldManager {
				t.Errorf("Tollgate manages fields of the team's quota: %+v", e)
			}
		}
		// An object of Tollgate's name that is not labelled as Tollgate's
		// stays its owner's; the rest of the path is generated, and the
		// namespace says why the quota is not.
		taken := "nsd-taken"
		pathNamespace(t, taken, "")
		own := `{"apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"tollgate-defaults","namespace":"nsd-taken"},"spec":{"hard":{"pods":"3"}}}`
		if _, stderr, err := apply(t, own); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		kubectl(t, "label", "namespace", taken, pathLabel+"=golden")
		eventually(t, time.Minute, func() error {
			if got, want := managedObjects(t, taken), []string{"Budget/tollgate-defaults", "LimitRange/tollgate-defaults", "NetworkPolicy/tollgate-defaults"}; !slices.Equal(got, want) {
				return fmt.Errorf("%v, want %v", got, want)
			}
			if notes := nsEvents(t, taken, "NamespaceDefaultsFailed"); !slices.ContainsFunc(notes, func(n string) bool {
				return strings.Contains(n, "ResourceQuota tollgate-defaults: exists without the label app.kubernetes.io/managed-by=tollgate: not Tollgate's, left alone")
			}) {
				return fmt.Errorf("no Warning Event on %s: %v", taken, notes)
			}
			return nil
		})
		if got := quotaHard(t, taken, nsdefaults.Name); !maps.Equal(got, map[string]string{"pods": "3"}) {
			t.Errorf("the team's tollgate-defaults quota changed: %v", got)
		}
		if metric("tollgate_namespace_defaults_failures_total", "ResourceQuota") < 1 {
			t.Errorf("the failure is not counted")
		}
		t.Logf("kubectl get events -n default --field-selector involvedObject.name=%s:\n%s", taken,
			kubectl(t, "get", "events", "-n", "default", "--field-selector", "involvedObject.name="+taken))
	})

	t.Run("an object the API server refuses is an Event and holds nothing else up", func(t *testing.T) {
		strict := "nsd-strict"
		pathNamespace(t, strict, "strict")
		eventually(t, time.Minute, func() error {
			if got, want := managedObjects(t, strict), []string{"ResourceQuota/tollgate-defaults"}; !slices.Equal(got, want) {
				return fmt.Errorf("%v, want %v", got, want)
			}
			if notes := nsEvents(t, strict, "NamespaceDefaultsFailed"); !slices.ContainsFunc(notes, func(n string) bool {
				return strings.HasPrefix(n, "LimitRange tollgate-defaults: applying: ") && strings.Contains(n, "is invalid")
			}) {
				return fmt.Errorf("no Warning Event on %s: %v", strict, notes)
			}
			return nil
		})
		t.Logf("kubectl get events -n default --field-selector involvedObject.name=%s:\n%s", strict,
			kubectl(t, "get", "events", "-n", "default", "--field-selector", "involvedObject.name="+strict))
		if metric("tollgate_namespace_defaults_failures_total", "LimitRange") < 1 {
			t.Errorf("the failure is not counted")
		}
		// The namespaces after it are still served.
		after := "nsd-after-strict"
		pathNamespace(t, after, "innovation")
		eventually(t, time.Minute, func() error {
			if got := managedObjects(t, after); len(got) != 2 {
				return fmt.Errorf("%s has %v", after, got)
			}
			return nil
		})
	})

	body := scrape(t, apiServerClient(t), fmt.Sprintf("https://127.0.0.1:%d", port))
	var series []string
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "tollgate_namespace_defaults_") {
			series = append(series, strings.TrimSpace(line))
		}
	}
	t.Logf("/metrics:\n%s", strings.Join(series, "\n"))
}

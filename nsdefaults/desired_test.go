package nsdefaults

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
)

// profile reads a profile as a config or a TollgateProfile writes it.
func profile(t *testing.T, y string) *policies.Profile {
	t.Helper()
	var p policies.Profile
	if err := yaml.UnmarshalStrict([]byte(y), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// objects reads the expected objects, one YAML document each.
func objects(t *testing.T, y string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for doc := range strings.SplitSeq(y, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// withoutHash is objs as maps, each without its digest annotation (whose
// value the digest tests check).
func withoutHash(t *testing.T, objs []*unstructured.Unstructured) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, o := range objs {
		c := o.DeepCopy()
		if c.GetAnnotations()[AnnotationHash] == "" {
			t.Errorf("%s has no %s annotation", c.GetKind(), AnnotationHash)
		}
		c.SetAnnotations(nil)
		// Through JSON, as the expected objects are read.
		b, err := c.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

const goldenProfile = `
namespaceDefaults:
  resourceQuota:
    hard: {requests.cpu: "4", limits.cpu: 8000m, requests.memory: 8Gi, requests.nvidia.com/gpu: "0", requests.storage: 100Gi, pods: "20", count/deployments.apps: "10"}
  limitRange:
    default: {cpu: 500m, memory: 512Mi}
    defaultRequest: {cpu: 100m, memory: 128Mi}
    max: {cpu: "2", memory: 2Gi}
    min: {cpu: 10m}
  networkPolicy:
    allowSameNamespace: true
    allowDNS: true
    ingressFromNamespaces: [{kubernetes.io/metadata.name: ingress-nginx}, {team: platform, role: monitoring}]
    egressCIDRs: [10.20.0.0/16, 192.168.1.7/24]
budget: {amount: "2500", currency: USD, period: monthly, thresholds: [80, 100], channels: [payments], action: deny}
`

func TestDesired(t *testing.T) {
	cases := []struct {
		name, profile string
		nilProfile    bool
		want          string
	}{
		{name: "every default", profile: goldenProfile, want: `
apiVersion: v1
kind: ResourceQuota
metadata:
  name: tollgate-defaults
  namespace: shop
  labels: {app.kubernetes.io/managed-by: tollgate, tollgate.dev/profile: golden}
spec:
  hard: {requests.cpu: "4", limits.cpu: "8", requests.memory: 8Gi, requests.nvidia.com/gpu: "0", requests.storage: 100Gi, pods: "20", count/deployments.apps: "10"}
---
apiVersion: v1
kind: LimitRange
metadata:
  name: tollgate-defaults
  namespace: shop
  labels: {app.kubernetes.io/managed-by: tollgate, tollgate.dev/profile: golden}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 512Mi}
    defaultRequest: {cpu: 100m, memory: 128Mi}
    max: {cpu: "2", memory: 2Gi}
    min: {cpu: 10m}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: tollgate-defaults
  namespace: shop
  labels: {app.kubernetes.io/managed-by: tollgate, tollgate.dev/profile: golden}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{podSelector: {}}]
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]
  - from: [{namespaceSelector: {matchLabels: {team: platform, role: monitoring}}}]
  egress:
  - to: [{podSelector: {}}]
  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}}]
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
  - to: [{ipBlock: {cidr: 10.20.0.0/16}}]
  - to: [{ipBlock: {cidr: 192.168.1.0/24}}]
---
apiVersion: tollgate.dev/v1alpha1
kind: Budget
metadata:
  name: tollgate-defaults
  namespace: shop
  labels: {app.kubernetes.io/managed-by: tollgate, tollgate.dev/profile: golden}
spec:
  scope: {namespace: shop}
  amount: "2500"
  currency: USD
  period: monthly
  thresholds: [80, 100]
  channels: [payments]
  action: deny
`},
		{name: "a network policy that allows nothing", profile: `{notice: on your own, namespaceDefaults: {networkPolicy: {}}}`, want: `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: tollgate-defaults
  namespace: shop
  labels: {app.kubernetes.io/managed-by: tollgate, tollgate.dev/profile: golden}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`},
		{name: "a budget alone, defaults left to the API server", profile: `{budget: {amount: "99.50"}}`, want: `
apiVersion: tollgate.dev/v1alpha1
kind: Budget
metadata:
  name: tollgate-defaults
  namespace: shop
  labels: {app.kubernetes.io/managed-by: tollgate, tollgate.dev/profile: golden}
spec: {scope: {namespace: shop}, amount: "99.50"}
`},
		{name: "a limit range with nothing in it is none", profile: `{namespaceDefaults: {limitRange: {}}}`},
		{name: "policies only", profile: `{policies: {"*": warn}, skipMutations: [resources]}`},
		{name: "no profile", nilProfile: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var p *policies.Profile
			if !tc.nilProfile {
				p = profile(t, tc.profile)
			}
			got, err := Desired("shop", "golden", p)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(objects(t, tc.want), withoutHash(t, got)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDesiredInvalid: a value that would not build (or that the API server
// would refuse outright) is an error naming the profile and the field,
// and nothing is built.
func TestDesiredInvalid(t *testing.T) {
	cases := []struct{ name, profile, want string }{
		{"quota without hard", `{namespaceDefaults: {resourceQuota: {hard: {}}}}`,
			"profile golden: namespaceDefaults.resourceQuota.hard: required"},
		{"quota quantity", `{namespaceDefaults: {resourceQuota: {hard: {requests.cpu: "4", limits.memory: lots}}}}`,
			`profile golden: namespaceDefaults.resourceQuota.hard["limits.memory"]: "lots" is not a quantity`},
		{"limit range quantity", `{namespaceDefaults: {limitRange: {max: {cpu: "2;rm -rf"}}}}`,
			`profile golden: namespaceDefaults.limitRange.max["cpu"]: "2;rm -rf" is not a quantity`},
		{"CIDR", `{namespaceDefaults: {networkPolicy: {egressCIDRs: [10.0.0.0/8, "10.0.0.0/33"]}}}`,
			`profile golden: namespaceDefaults.networkPolicy.egressCIDRs[1]: "10.0.0.0/33" is not a CIDR`},
		{"empty namespace selector", `{namespaceDefaults: {networkPolicy: {ingressFromNamespaces: [{}]}}}`,
			"profile golden: namespaceDefaults.networkPolicy.ingressFromNamespaces[0]: empty (it would allow every namespace)"},
		{"budget amount the CRD refuses", `{budget: {amount: 5k}}`,
			`profile golden: budget.amount: "5k" is not an amount`},
		{"budget threshold", `{budget: {amount: "10", thresholds: [50, -1]}}`,
			"profile golden: budget.thresholds[1]: -1 is not a percentage above 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Desired("shop", "golden", profile(t, tc.profile))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if objs != nil {
				t.Errorf("built %d objects from an invalid profile", len(objs))
			}
		})
	}
}

// TestDigest: the digest changes with what is generated (a profile's
// change is told from an edit by it) and not otherwise.
func TestDigest(t *testing.T) {
	hash := func(y, ns string) string {
		objs, err := Desired(ns, "golden", profile(t, y))
		if err != nil || len(objs) != 1 {
			t.Fatalf("%v, %d objects", err, len(objs))
		}
		return objs[0].GetAnnotations()[AnnotationHash]
	}
	a := hash(`{namespaceDefaults: {resourceQuota: {hard: {pods: "10", requests.cpu: "1"}}}}`, "shop")
	if b := hash(`{namespaceDefaults: {resourceQuota: {hard: {requests.cpu: 1000m, pods: "10"}}}}`, "shop"); a != b {
		t.Errorf("the same quota written two ways has digests %s and %s", a, b)
	}
	if b := hash(`{namespaceDefaults: {resourceQuota: {hard: {pods: "11", requests.cpu: "1"}}}}`, "shop"); a == b {
		t.Errorf("a changed quota kept its digest %s", a)
	}
	if b := hash(`{namespaceDefaults: {resourceQuota: {hard: {pods: "10", requests.cpu: "1"}}}}`, "cart"); a == b {
		t.Errorf("another namespace's quota has the same digest %s", a)
	}
}

package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadValues: every mistake in a values file stops helm before anything
// reaches the cluster, with the path of the field and what is wrong.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		want         []string // substrings of helm's error, each required
	}{{
		name:   "replicas spelled out",
		values: "replicas: three\n",
		want:   []string{"at '/replicas': got string, want integer"},
	}, {
		name:   "unknown key",
		values: "replica: 3\n",
		want:   []string{"additional properties 'replica' not allowed"},
	}, {
		name:   "unknown nested key",
		values: "webhooks:\n  validating:\n    failurePolcy: Ignore\n",
		want:   []string{"at '/webhooks/validating': additional properties 'failurePolcy' not allowed"},
	}, {
		name:   "config field misspelled (the config's own schema)",
		values: "config:\n  policies:\n    naming-convention: {acton: warn}\n",
		want:   []string{"at '/config/policies/naming-convention': additional properties 'acton' not allowed"},
	}, {
		name:   "config action unknown",
		values: "config:\n  policies:\n    images-no-latest: {action: block}\n",
		want:   []string{"at '/config/policies/images-no-latest/action'"},
	}, {
		name:   "a cluster both central and execution",
		values: "finops:\n  clusterName: east\n  fleet:\n    prometheusURL: http://thanos:9090\n    centralKubeconfigSecret: hub\n",
		want:   []string{"prometheusURL (the central cluster) and centralKubeconfigSecret (an execution cluster) exclude each other"},
	}, {
		name:   "a fleet without the cluster's name",
		values: "finops:\n  fleet:\n    prometheusURL: http://thanos:9090\n",
		want:   []string{"finops.fleet needs finops.clusterName"},
	}, {
		name:   "a cluster name Budgets cannot name",
		values: "finops:\n  clusterName: Prod_EU\n",
		want:   []string{"at '/finops/clusterName'"},
	}, {
		name:   "rollout mode",
		values: "rollout:\n  mode: Enforce\n",
		want:   []string{"at '/rollout/mode'", "'enforce', 'warn', 'audit'"},
	}, {
		name:   "failure policy",
		values: "webhooks:\n  validating:\n    failurePolicy: Sometimes\n",
		want:   []string{"at '/webhooks/validating/failurePolicy'"},
	}, {
		name:   "timeout above the API server's limit",
		values: "webhooks:\n  validating:\n    timeoutSeconds: 60\n",
		want:   []string{"at '/webhooks/validating/timeoutSeconds': maximum: got 60, want 30"},
	}, {
		name: "intercepting webhook configurations",
		values: `webhooks:
  validating:
    extraRules:
      - {apiGroups: [admissionregistration.k8s.io], apiVersions: ["*"], operations: [CREATE], resources: [validatingwebhookconfigurations]}
`,
		want: []string{"at '/webhooks/validating/extraRules/0/apiGroups/0'", "at '/webhooks/validating/extraRules/0/resources/0'"},
	}, {
		name:   "intercepting leases",
		values: "webhooks:\n  mutating:\n    extraRules:\n      - {apiGroups: [\"\"], apiVersions: [\"*\"], operations: [UPDATE], resources: [leases]}\n",
		want:   []string{"at '/webhooks/mutating/extraRules/0/resources/0'"},
	}, {
		name:   "intercepting everything",
		values: "webhooks:\n  validating:\n    extraRules:\n      - {apiGroups: [apps], apiVersions: [\"*\"], operations: [CREATE], resources: [\"*\"]}\n",
		want:   []string{"at '/webhooks/validating/extraRules/0/resources/0'"},
	}, {
		name:   "reading secrets through extraReadRules",
		values: "rbac:\n  extraReadRules:\n    - {apiGroups: [\"\"], resources: [secrets]}\n",
		want:   []string{"at '/rbac/extraReadRules/0/resources/0'"},
	}, {
		name:   "certificate mode",
		values: "certificates:\n  mode: vault\n",
		want:   []string{"at '/certificates/mode'", "'self', 'certManager'"},
	}, {
		name:   "scan interval in words",
		values: "finops:\n  scanInterval: 5 minutes\n",
		want:   []string{"at '/finops/scanInterval': '5 minutes' does not match pattern"},
	}, {
		name:   "alert route without its secret",
		values: "finops:\n  alertRoutes:\n    default: ops\n    channels:\n      ops: {type: slack}\n",
		want:   []string{"at '/finops/alertRoutes/channels/ops': missing property 'urlSecret'"},
	}, {
		name:   "alert routes without channels",
		values: "finops:\n  alertRoutes:\n    default: ops\n",
		want:   []string{"at '/finops/alertRoutes': properties 'channels' required"},
	}, {
		name:   "image digest",
		values: "image:\n  digest: latest\n",
		want:   []string{"at '/image/digest': 'latest' does not match pattern"},
	}, {
		name:   "API server CIDR without a prefix",
		values: "networkPolicy:\n  egress:\n    apiServer:\n      cidrs: [10.0.0.1]\n",
		want:   []string{"at '/networkPolicy/egress/apiServer/cidrs/0'"},
	}, {
		name:   "policy file name",
		values: "extraPolicies:\n  team.txt: package x\n",
		want:   []string{"at '/extraPolicies': additional properties 'team.txt' not allowed"},
	}, {
		name:   "namespace names",
		values: "webhooks:\n  excludedNamespaces: [Legacy]\n",
		want:   []string{"at '/webhooks/excludedNamespaces/0': 'Legacy' does not match pattern"},
	}, {
		name:   "ServiceMonitor without the metrics Service",
		values: "metrics:\n  service: {enabled: false}\n  serviceMonitor: {enabled: true}\n",
		want:   []string{"metrics.serviceMonitor.enabled needs metrics.service.enabled"},
	}, {
		name:   "client authentication without a CA",
		values: "server:\n  clientAuth: {enabled: true}\n",
		want:   []string{"server.clientAuth.enabled needs exactly one of server.clientAuth.caConfigMap and server.clientAuth.caSecret"},
	}, {
		name:   "client authentication without names",
		values: "server:\n  clientAuth: {enabled: true, caSecret: ca, names: []}\n",
		want:   []string{"server.clientAuth.enabled needs server.clientAuth.names"},
	}, {
		name:   "metrics auth unknown",
		values: "metrics:\n  auth: basic\n",
		want:   []string{"at '/metrics/auth'", "'kubernetes', 'none'"},
	}, {
		name:   "metrics reader without a namespace",
		values: "metrics:\n  readers: [{name: prometheus}]\n",
		want:   []string{"at '/metrics/readers/0': missing property 'namespace'"},
	}, {
		name:   "not YAML",
		values: "replicas: [3\n",
		want:   []string{"bad.yaml: error converting YAML to JSON: yaml: line 1: did not find expected ',' or ']'"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(file, []byte(tc.values), 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, err := helm(t, "template", "tollgate", chartDir(t), "--namespace", "tollgate-system", "--values", file)
			if err == nil {
				t.Fatalf("helm template accepted\n%s", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("helm's error lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

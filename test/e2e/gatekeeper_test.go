package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// requiredLabelsTemplate is a ConstraintTemplate of kind %[2]s (name
// %[1]s): the labels its constraints list must be set.
const requiredLabelsTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: %[1]s
  annotations:
    metadata.gatekeeper.sh/title: Team labels
spec:
  crd:
    spec:
      names:
        kind: %[2]s
      validation:
        openAPIV3Schema:
          type: object
          properties:
            labels:
              type: array
              items: {type: string}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package %[1]s

        violation[{"msg": msg, "details": {"path": ["metadata", "labels", label]}}] {
          label := input.parameters.labels[_]
          not input.review.object.metadata.labels[label]
          msg := sprintf("%%v %%v has no %%v label", [input.review.kind.kind, input.review.object.metadata.name, label])
        }
`

// requiredLabelsConstraint is a constraint of kind on kinds of the core
// group, with an enforcement action and the labels required.
func requiredLabelsConstraint(kind, name, action, matchKind string, labels ...string) string {
	return fmt.Sprintf(`apiVersion: constraints.gatekeeper.sh/v1beta1
kind: %s
metadata:
  name: %s
spec:
  enforcementAction: %s
  match:
    kinds:
      - apiGroups: [""]
        kinds: [%s]
    namespaces: ["gk-*"]
  parameters:
    labels: [%s]
`, kind, name, action, matchKind, strings.Join(labels, ", "))
}

func service(ns, name string, labels, annotations map[string]string) string {
	meta := map[string]any{"name": name, "namespace": ns, "labels": labels, "annotations": annotations}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Service","metadata":%s,"spec":{"ports":[{"port":80}],"selector":{"app":%q}}}`, toJSON(meta), name)
}

func toJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func configMap(ns, name string, labels map[string]string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":%q,"labels":%s}}`, name, ns, toJSON(labels))
}

// waitConstraintCRD waits until the CRD of a template's kind is served
// and returns it.
func waitConstraintCRD(t *testing.T, plural string) *unstructured.Unstructured {
	t.Helper()
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	eventually(t, time.Minute, func() error {
		if err := env.client.Get(context.Background(), client.ObjectKey{Name: plural + ".constraints.gatekeeper.sh"}, crd); err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			if c := c.(map[string]any); c["type"] == "Established" && c["status"] == "True" {
				return nil
			}
		}
		return fmt.Errorf("CRD %s not established", crd.GetName())
	})
	return crd
}

// applyEventually applies a manifest until kubectl knows its kind (a CRD
// just created takes kubectl's discovery a moment).
func applyEventually(t *testing.T, manifest string) {
	t.Helper()
	eventually(t, time.Minute, func() error {
		_, stderr, err := apply(t, manifest)
		if err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		return nil
	})
}

// denied applies manifest with a server dry run and returns the denial,
// or an error if it was admitted.
func denied(t *testing.T, manifest, want string) error {
	t.Helper()
	_, stderr, err := apply(t, manifest, "--dry-run=server")
	if err == nil {
		return fmt.Errorf("admitted, want a denial with %q (stderr %q)", want, stderr)
	}
	if !strings.Contains(stderr, want) {
		return fmt.Errorf("denial lacks %q:\n%s", want, stderr)
	}
	return nil
}

// commented puts a shell comment after the command line of a transcript,
// as a user who annotates what they type would.
func commented(transcript, comment string) string {
	cmd, rest, _ := strings.Cut(transcript, "\n")
	return cmd + "   # " + comment + "\n" + rest
}

// gatekeeperEvents lists the Warning Events on an object, as `kubectl
// describe` shows them.
func gatekeeperEvents(t *testing.T, kind, name string) []string {
	t.Helper()
	list, err := env.kube.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=" + kind + ",involvedObject.name=" + name,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.Type == "Warning" {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// TestGatekeeperConstraints: a ConstraintTemplate and its constraints
// applied with kubectl are enforced at admission: Tollgate creates the
// constraint CRD (labelled as its own), a deny constraint denies with its
// kind/name and message, a warn constraint warns, the background audit
// reports an object from before the constraint, a change of parameters
// judges the next apply, and a template whose Rego does not compile is an
// Event naming the field while the good constraints keep enforcing — also
// when it is a new version of a template in force.
func TestGatekeeperConstraints(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "gk-shop")
	// Runs last: the template's removal is in force before the next test,
	// whose Services this constraint would judge.
	defer eventually(t, 30*time.Second, func() error {
		if _, stderr, err := apply(t, service("gk-shop", "after", nil, nil), "--dry-run=server"); err != nil {
			return fmt.Errorf("the removed constraint still judges: %w %s", err, stderr)
		}
		return nil
	})
	// From before the constraint: the audit is to find it.
	if _, _, err := apply(t, service("gk-shop", "legacy", nil, nil)); err != nil {
		t.Fatal(err)
	}
	defer kubectl(t, "delete", "--ignore-not-found", "-n", "gk-shop", "service/legacy", "service/web", "configmap/settings")
	defer kubectl(t, "delete", "--ignore-not-found", "crd", "teamrequiredlabels.constraints.gatekeeper.sh", "teambrokenrego.constraints.gatekeeper.sh")
	defer kubectl(t, "delete", "--ignore-not-found", "constrainttemplate", "teamrequiredlabels", "teambrokenrego")
	// The template and its constraints are applied from files, and what
	// kubectl prints is the transcript docs/policies.md shows.
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const deny, warn = "services-need-alert-channel", "configmaps-should-name-owner"
	for file, manifest := range map[string]string{
		"teamrequiredlabels.yaml": fmt.Sprintf(requiredLabelsTemplate, "teamrequiredlabels", "TeamRequiredLabels"),
		"constraints.yaml": requiredLabelsConstraint("TeamRequiredLabels", deny, "deny", "Service", "alert-channel") + "---\n" +
			requiredLabelsConstraint("TeamRequiredLabels", warn, "warn", "ConfigMap", "owner"),
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(manifest), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var transcript strings.Builder
	out, err := console(t, dir, "apply", "-f", "teamrequiredlabels.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(commented(out, "a ConstraintTemplate, kind TeamRequiredLabels"))
	crd := waitConstraintCRD(t, "teamrequiredlabels")
	if got := crd.GetLabels()["app.kubernetes.io/managed-by"]; got != "tollgate" {
		t.Errorf("the constraint CRD Tollgate created is labelled managed-by %q", got)
	}
	out, err = console(t, dir, "get", "crd", "-l", "app.kubernetes.io/managed-by=tollgate")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	transcript.WriteString(out)
	defer kubectl(t, "delete", "--ignore-not-found", "teamrequiredlabels.constraints.gatekeeper.sh", deny, warn)
	// Until kubectl's discovery knows the new kind, nothing is created.
	eventually(t, time.Minute, func() error {
		if out, err = console(t, dir, "apply", "-f", "constraints.yaml"); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	transcript.WriteString(commented(out, "Services need alert-channel (deny), ConfigMaps owner (warn)"))

	// A constraint that matches every kind: judged wherever Tollgate
	// intercepts, never a reason to intercept everything.
	applyEventually(t, `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: TeamRequiredLabels
metadata: {name: everything-recorded}
spec:
  enforcementAction: dryrun
  match: {namespaces: ["gk-none"]}
  parameters: {labels: [team]}
`)
	defer kubectl(t, "delete", "--ignore-not-found", "teamrequiredlabels.constraints.gatekeeper.sh", "everything-recorded")

	t.Run("the webhook intercepts the kinds constraints match, never everything", func(t *testing.T) {
		eventually(t, time.Minute, func() error {
			vwc, err := env.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "tollgate", metav1.GetOptions{})
			if err != nil {
				return err
			}
			var core []string
			for _, r := range vwc.Webhooks[0].Rules {
				for _, g := range r.APIGroups {
					if g == "*" {
						return fmt.Errorf("a rule intercepts every API group: %+v", r)
					}
					if g == "" {
						core = append(core, r.Resources...)
					}
				}
				if slices.Contains(r.Resources, "*") || slices.Contains(r.Resources, "*/*") {
					return fmt.Errorf("a rule intercepts every resource: %+v", r)
				}
			}
			if !slices.Contains(core, "services") || !slices.Contains(core, "configmaps") {
				return fmt.Errorf("core resources intercepted: %v", core)
			}
			return nil
		})
	})

	t.Run("deny", func(t *testing.T) {
		eventually(t, time.Minute, func() error {
			return denied(t, service("gk-shop", "web", nil, nil),
				`admission webhook "validate.tollgate.dev" denied the request: tollgate denied Service gk-shop/web`)
		})
		out, err := console(t, "", "-n", "gk-shop", "create", "service", "clusterip", "web", "--tcp=80")
		if want := "[TeamRequiredLabels/services-need-alert-channel] metadata.labels.alert-channel: Service web has no alert-channel label"; err == nil || !strings.Contains(out, want) {
			t.Errorf("the denial lacks %q (err %v):\n%s", want, err, out)
		}
		transcript.WriteString(out)
		if _, stderr, err := apply(t, service("gk-shop", "web", map[string]string{"alert-channel": "shop-oncall"}, nil)); err != nil {
			t.Errorf("a labelled Service was denied: %v\n%s", err, stderr)
		}
	})

	t.Run("warn", func(t *testing.T) {
		const want = "Warning: tollgate: [TeamRequiredLabels/configmaps-should-name-owner] metadata.labels.owner: ConfigMap settings has no owner label"
		eventually(t, time.Minute, func() error {
			_, stderr, err := apply(t, configMap("gk-shop", "settings", nil), "--dry-run=server")
			if err != nil {
				return fmt.Errorf("a warn constraint denied: %w %s", err, stderr)
			}
			if !strings.Contains(stderr, want) {
				return fmt.Errorf("no warning %q:\n%s", want, stderr)
			}
			return nil
		})
		out, err := console(t, "", "-n", "gk-shop", "create", "configmap", "settings", "--from-literal=region=eu")
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("a ConfigMap without owner (err %v):\n%s\nwant the warning %q", err, out, want)
		}
		transcript.WriteString(out)
	})
	out = transcript.String()
	docexample.Check(t, root, "e2e-gatekeeper-constraints", out)

	t.Run("audit", func(t *testing.T) {
		eventually(t, 3*time.Minute, func() error {
			results, err := reportResults(ctx, "gk-shop", "tollgate")
			if err != nil {
				return err
			}
			for _, res := range results {
				if res["policy"] == "TeamRequiredLabels/"+deny && res["result"] == "fail" && strings.Contains(fmt.Sprint(res["resources"]), "legacy") {
					return nil
				}
			}
			return fmt.Errorf("no %s result for Service legacy among %d results", deny, len(results))
		})
	})

	t.Run("a change of parameters judges the next apply", func(t *testing.T) {
		alerted := service("gk-shop", "api", map[string]string{"alert-channel": "shop-oncall"}, nil)
		if _, stderr, err := apply(t, alerted, "--dry-run=server"); err != nil {
			t.Fatalf("before the change, a Service with alert-channel was denied: %v\n%s", err, stderr)
		}
		if _, _, err := apply(t, requiredLabelsConstraint("TeamRequiredLabels", deny, "deny", "Service", "alert-channel", "runbook")); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			return denied(t, alerted, "Service api has no runbook label")
		})
	})

	t.Run("a broken template is an Event naming the field; the good ones keep enforcing", func(t *testing.T) {
		broken := strings.Replace(fmt.Sprintf(requiredLabelsTemplate, "teambrokenrego", "TeamBrokenRego"), "not input.review", "not input[.review", 1)
		if _, _, err := apply(t, broken); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			events := gatekeeperEvents(t, "ConstraintTemplate", "teambrokenrego")
			for _, e := range events {
				if strings.HasPrefix(e, "NotLoaded: spec.targets[0].rego: line ") && strings.Contains(e, "rego_parse_error") {
					return nil
				}
			}
			return fmt.Errorf("no NotLoaded Event naming spec.targets[0].rego: %q", events)
		})
		out, err := console(t, "", "describe", "constrainttemplate", "teambrokenrego")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		docexample.Check(t, root, "e2e-gatekeeper-broken-template", out)
		if err := denied(t, service("gk-shop", "web2", nil, nil), "[TeamRequiredLabels/services-need-alert-channel]"); err != nil {
			t.Error(err)
		}
		if out, _, _ := env.cluster.Kubectl(ctx, "get", "crd", "teambrokenrego.constraints.gatekeeper.sh"); out != "" {
			t.Errorf("a template that did not load got a CRD:\n%s", out)
		}
	})

	t.Run("a broken new version leaves the last good one in force", func(t *testing.T) {
		broken := strings.Replace(fmt.Sprintf(requiredLabelsTemplate, "teamrequiredlabels", "TeamRequiredLabels"), "not input.review", "not input[.review", 1)
		if _, _, err := apply(t, broken); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			for _, e := range gatekeeperEvents(t, "ConstraintTemplate", "teamrequiredlabels") {
				if strings.HasPrefix(e, "NotLoaded: generation 2 does not load; generation 1 stays in force: spec.targets[0].rego: ") {
					return nil
				}
			}
			return fmt.Errorf("no Event saying generation 1 stays in force: %q", gatekeeperEvents(t, "ConstraintTemplate", "teamrequiredlabels"))
		})
		if err := denied(t, service("gk-shop", "web3", nil, nil), "Service web3 has no alert-channel label"); err != nil {
			t.Error(err)
		}
		// The CRD, from generation 1, was never rewritten.
		crd := waitConstraintCRD(t, "teamrequiredlabels")
		if crd.GetGeneration() != 1 {
			t.Errorf("the constraint CRD is at generation %d, want 1", crd.GetGeneration())
		}
	})
}

// uniqueHostnameTemplate reads data.inventory: a Service's hostname
// annotation must not be claimed by another Service, in any namespace.
const uniqueHostnameTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: teamuniquehostname
spec:
  crd:
    spec:
      names:
        kind: TeamUniqueHostname
      validation:
        openAPIV3Schema:
          type: object
          properties:
            annotation: {type: string}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package teamuniquehostname

        violation[{"msg": msg, "details": {"path": ["metadata", "annotations", key]}}] {
          key := input.parameters.annotation
          host := input.review.object.metadata.annotations[key]
          other := data.inventory.namespace[ns][_].Service[name]
          other.metadata.annotations[key] == host
          not same(ns, name)
          msg := sprintf("hostname %v is already claimed by Service %v/%v", [host, ns, name])
        }

        same(ns, name) {
          ns == input.review.object.metadata.namespace
          name == input.review.object.metadata.name
        }
`

// TestGatekeeperReferentialTemplate: a template that reads data.inventory
// sees the Services gatekeeper.sync keeps there: those from before the
// template, those created and those deleted after.
func TestGatekeeperReferentialTemplate(t *testing.T) {
	teamNamespace(t, "gk-a")
	teamNamespace(t, "gk-b")
	const key = "example.com/hostname"
	claim := func(ns, name, host string) string { return service(ns, name, nil, map[string]string{key: host}) }
	if _, _, err := apply(t, claim("gk-a", "shop", "shop.example.com")); err != nil {
		t.Fatal(err)
	}
	defer kubectl(t, "delete", "--ignore-not-found", "-n", "gk-a", "service/shop")
	defer kubectl(t, "delete", "--ignore-not-found", "crd", "teamuniquehostname.constraints.gatekeeper.sh")
	defer kubectl(t, "delete", "--ignore-not-found", "constrainttemplate", "teamuniquehostname")
	if _, _, err := apply(t, uniqueHostnameTemplate); err != nil {
		t.Fatal(err)
	}
	waitConstraintCRD(t, "teamuniquehostname")
	applyEventually(t, `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: TeamUniqueHostname
metadata: {name: unique-service-hostnames}
spec:
  match:
    kinds: [{apiGroups: [""], kinds: [Service]}]
  parameters: {annotation: example.com/hostname}
`)
	defer kubectl(t, "delete", "--ignore-not-found", "teamuniquehostname.constraints.gatekeeper.sh", "unique-service-hostnames")

	// A Service from before the template.
	eventually(t, time.Minute, func() error {
		return denied(t, claim("gk-b", "storefront", "shop.example.com"), "hostname shop.example.com is already claimed by Service gk-a/shop")
	})
	_, stderr, _ := apply(t, claim("gk-b", "storefront", "shop.example.com"))
	t.Logf("kubectl apply (a hostname another Service claims):\n%s", stderr)
	if !strings.Contains(stderr, "[TeamUniqueHostname/unique-service-hostnames]") {
		t.Errorf("the denial does not name the constraint:\n%s", stderr)
	}
	if _, stderr, err := apply(t, claim("gk-b", "blog", "blog.example.com")); err != nil {
		t.Fatalf("a free hostname was denied: %v\n%s", err, stderr)
	}
	defer kubectl(t, "delete", "--ignore-not-found", "-n", "gk-b", "service/blog")
	// A Service created after it.
	eventually(t, 30*time.Second, func() error {
		return denied(t, claim("gk-a", "blog-copy", "blog.example.com"), "already claimed by Service gk-b/blog")
	})
	// A Service deleted frees its hostname.
	kubectl(t, "delete", "service", "-n", "gk-a", "shop")
	eventually(t, 30*time.Second, func() error {
		if _, stderr, err := apply(t, claim("gk-b", "storefront", "shop.example.com"), "--dry-run=server"); err != nil {
			return fmt.Errorf("still denied: %w %s", err, stderr)
		}
		return nil
	})
}

// gatekeeperCRD is a constraint CRD as Gatekeeper, running beside
// Tollgate, would have created it: not labelled as Tollgate's.
const gatekeeperCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: teamforeign.constraints.gatekeeper.sh
  labels: {gatekeeper.sh/constraint: "yes"}
spec:
  group: constraints.gatekeeper.sh
  names: {kind: TeamForeign, listKind: TeamForeignList, plural: teamforeign, singular: teamforeign, categories: [constraint, constraints]}
  scope: Cluster
  versions:
    - name: v1beta1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// TestGatekeeperLeavesOthersCRDs: a constraint CRD Tollgate did not create
// (Gatekeeper's) is used as it is and never changed.
func TestGatekeeperLeavesOthersCRDs(t *testing.T) {
	teamNamespace(t, "gk-foreign")
	defer kubectl(t, "delete", "--ignore-not-found", "crd", "teamforeign.constraints.gatekeeper.sh")
	if _, _, err := apply(t, gatekeeperCRD); err != nil {
		t.Fatal(err)
	}
	waitConstraintCRD(t, "teamforeign")
	defer kubectl(t, "delete", "--ignore-not-found", "constrainttemplate", "teamforeign")
	if _, _, err := apply(t, fmt.Sprintf(requiredLabelsTemplate, "teamforeign", "TeamForeign")); err != nil {
		t.Fatal(err)
	}
	applyEventually(t, requiredLabelsConstraint("TeamForeign", "configmaps-need-team", "deny", "ConfigMap", "team"))
	eventually(t, time.Minute, func() error {
		return denied(t, configMap("gk-foreign", "settings", nil), "[TeamForeign/configmaps-need-team]")
	})
	crd := waitConstraintCRD(t, "teamforeign")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	if crd.GetGeneration() != 1 || len(versions) != 1 || crd.GetLabels()["app.kubernetes.io/managed-by"] != "" {
		t.Errorf("Tollgate changed a CRD it did not create: generation %d, %d versions, labels %v", crd.GetGeneration(), len(versions), crd.GetLabels())
	}
}

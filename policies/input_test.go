package policies_test

import (
	"context"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tollgate-dev/tollgate/policies"
)

// An admission request becomes the same input a manifest does, plus the
// operation, the user, dryRun and the old object.
func TestAdmissionInput(t *testing.T) {
	const whoami = `# METADATA
# custom:
#   id: test-request
package test.request

violation contains sprintf("%s by %s dry=%v old=%s sub=%s ns=%s", [input.operation, input.userInfo.username, input.dryRun, input.oldObject.metadata.name, input.subResource, input.namespace.metadata.labels.team]) if input.source == "admission"
`
	e := newEngine(t, map[string]string{"req.rego": whoami, "p.rego": privilegedPolicy})
	dry := true
	req := &admissionv1.AdmissionRequest{
		UID:         "u-1",
		Kind:        metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Operation:   admissionv1.Update,
		SubResource: "",
		UserInfo:    authenticationv1.UserInfo{Username: "alice", Groups: []string{"devs"}, Extra: map[string]authenticationv1.ExtraValue{"scopes": {"a"}}},
		DryRun:      &dry,
		Object: runtime.RawExtension{Raw: []byte(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},
			"spec":{"template":{"spec":{"containers":[{"name":"a","securityContext":{"privileged":true}}]}}}}`)},
		OldObject: runtime.RawExtension{Raw: []byte(`{"metadata":{"name":"web-old"}}`)},
	}
	ns := map[string]any{"metadata": map[string]any{"name": "shop", "labels": map[string]any{"team": "payments"}}}
	in, err := policies.AdmissionInput(req, ns)
	if err != nil {
		t.Fatal(err)
	}
	d := e.Evaluate(context.Background(), in)
	var msgs []string
	for _, f := range d.Findings {
		msgs = append(msgs, f.Policy+": "+f.Message+" @ "+f.Path)
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		"test-request: UPDATE by alice dry=true old=web-old sub= ns=payments",
		"test-privileged: container \"a\" is privileged @ spec.template.spec.containers[0].securityContext.privileged",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings lack %q:\n%s", want, got)
		}
	}

	req.Object.Raw = []byte(`{"metadata": `)
	if _, err := policies.AdmissionInput(req, ns); err == nil || !strings.Contains(err.Error(), "decoding request object") {
		t.Errorf("malformed object: got %v", err)
	}
}

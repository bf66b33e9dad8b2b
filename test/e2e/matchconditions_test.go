package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/webhook"
)

// completeE2EPod holds every default the e2e config adds, in a namespace
// made by teamNamespace, and names its image by digest.
const completeE2EPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"skipmutate",
 "labels":{"app":"done","team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}},
 "spec":{"securityContext":{"runAsNonRoot":%s,"seccompProfile":{"type":"RuntimeDefault"}},
  "containers":[{"name":"c","image":"ghcr.io/corp/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
   "securityContext":{"allowPrivilegeEscalation":%s,"capabilities":{"drop":["ALL"]}%s},
   "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}`

// podRequests sums tollgate_admission_requests_total for Pods on one
// webhook.
func podRequests(metrics, hook string) float64 {
	var n float64
	for line := range strings.Lines(metrics) {
		if !strings.HasPrefix(line, "tollgate_admission_requests_total{") || !strings.Contains(line, `kind="Pod"`) ||
			!strings.Contains(line, `webhook="`+hook+`"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			n += v
		}
	}
	return n
}

// TestCompletePodsSkipMutation: on the real API server, a Pod that
// already holds every default is admitted without a call to /mutate (the
// server's counters say so) and still validated; an incomplete one is
// mutated; one that fakes completeness with insecure values skips /mutate
// and is denied by validation all the same.
func TestCompletePodsSkipMutation(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "skipmutate")
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate"}, &mwc); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mwc.Webhooks[0].MatchConditions, func(c admissionregistrationv1.MatchCondition) bool {
		return c.Name == webhook.CompleteConditionName
	}) {
		t.Fatalf("the mutating webhook has no %s condition: %+v", webhook.CompleteConditionName, mwc.Webhooks[0].MatchConditions)
	}
	hc := apiServerClient(t)
	base := fmt.Sprintf("https://127.0.0.1:%d", env.port)
	create := func(pod string) (string, string, error) {
		return env.cluster.KubectlWithStdin(ctx, pod, "create", "--dry-run=server", "-o", "json", "-f", "-")
	}

	// Controllers elsewhere in the cluster may create Pods meanwhile: a
	// window in which three complete Pods were validated and no Pod at all
	// was mutated is the proof.
	try := 0
	eventually(t, 60*time.Second, func() error {
		before := scrape(t, hc, base)
		for i := range 3 {
			try++
			if _, stderr, err := create(fmt.Sprintf(completeE2EPod, fmt.Sprintf("complete-%d-%d", try, i), "true", "false", "")); err != nil {
				t.Fatalf("a complete Pod was not admitted: %s", stderr)
			}
		}
		after := scrape(t, hc, base)
		mutated := podRequests(after, "mutate") - podRequests(before, "mutate")
		validated := podRequests(after, "validate") - podRequests(before, "validate")
		if validated < 3 {
			t.Fatalf("%v Pods validated, want at least 3: validation must see every Pod", validated)
		}
		if mutated != 0 {
			return fmt.Errorf("%v Pods sent to /mutate while 3 complete ones were created", mutated)
		}
		return nil
	})

	// Incomplete: no resources and no container security context.
	bare := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bare","namespace":"skipmutate",
	 "labels":{"app":"bare","team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}},
	 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
	  "containers":[{"name":"c","image":"ghcr.io/corp/web:1.4.2"}]}}`
	out, stderr, err := create(bare)
	if err != nil {
		t.Fatalf("an incomplete Pod was not admitted: %s", stderr)
	}
	for _, want := range []string{`"allowPrivilegeEscalation": false`, `"memory": "128Mi"`, `tollgate.dev/injected`} {
		if !strings.Contains(out, want) {
			t.Errorf("the incomplete Pod was not mutated (%s missing):\n%s", want, out)
		}
	}

	// Forged completeness: every field present, the values insecure.
	forged := fmt.Sprintf(completeE2EPod, "forged", "false", "true", `,"privileged":true`)
	_, stderr, err = create(forged)
	if err == nil {
		t.Fatal("a Pod faking completeness with insecure values was admitted")
	}
	for _, policy := range []string{"pss-baseline-privileged", "pss-restricted-privilege-escalation", "pss-restricted-run-as-non-root"} {
		if !strings.Contains(stderr, policy) {
			t.Errorf("the denial does not name %s:\n%s", policy, stderr)
		}
	}
}

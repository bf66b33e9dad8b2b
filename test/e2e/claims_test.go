package e2e

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// postgresCRD has the shape of a Crossplane claim: a namespaced
// PostgreSQLInstance whose spec.parameters name an instance class, a
// storage class and a size.
const postgresCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: postgresqlinstances.database.example.org
spec:
  group: database.example.org
  scope: Namespaced
  names: {kind: PostgreSQLInstance, plural: postgresqlinstances, singular: postgresqlinstance, listKind: PostgreSQLInstanceList}
  versions:
    - name: v1alpha1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                parameters:
                  type: object
                  properties:
                    instanceClass: {type: string}
                    storageClass: {type: string}
                    storageGB: {type: integer}
                compositionSelector:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
`

// claimsConfig governs the claim kind: labelled, priced from its fields,
// and capped at db.m5.large on the golden path.
const claimsConfig = `
exceptions:
  namespaces: [platform-exceptions]
governedKinds:
  - group: database.example.org
    kind: PostgreSQLInstance
    pricing:
      - {class: instance, key: spec.parameters.instanceClass}
      - {class: storage, key: spec.parameters.storageClass, quantity: spec.parameters.storageGB}
parameters:
  cloud:
    instanceClasses: [db.t3.micro, db.t3.medium, db.m5.large, db.m5.xlarge, db.m5.4xlarge]
profiles:
  default: golden
  definitions:
    golden:
      parameters: {cloud: {maxInstanceClass: db.m5.large}}
`

const claimsPrices = `
currencyCode: USD
cloud:
  instanceClasses: {db.t3.micro: "0.017", db.t3.medium: "0.068", db.m5.large: "0.171", db.m5.xlarge: "0.342", db.m5.4xlarge: "1.368"}
  storageClasses: {gp3: "0.08"}
`

func postgresClaim(ns, name, params string) string {
	return fmt.Sprintf(`{"apiVersion":"database.example.org/v1alpha1","kind":"PostgreSQLInstance",
	 "metadata":{"name":%q,"namespace":%q},"spec":{"parameters":{%s}}}`, name, ns, params)
}

// TestGovernedClaimsThroughTheAPIServer, with a claim-shaped custom
// resource on the real API server and a server whose config governs it:
// the claim gets the namespace's ownership labels, is priced from its
// fields (the budget gate counts it, and the estimator prices what the
// cluster stored), is denied above the golden path's size cap with the
// class's price in the message, and is admitted above it once a
// TollgateException names an approver and a ticket.
func TestGovernedClaimsThroughTheAPIServer(t *testing.T) {
	ctx := context.Background()
	if _, stderr, err := apply(t, postgresCRD); err != nil {
		t.Fatalf("installing the CRD: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		_, _, _ = env.cluster.Kubectl(ctx, "delete", "crd", "postgresqlinstances.database.example.org", "--wait=false")
	})
	kubectl(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/postgresqlinstances.database.example.org")
	ns := "claims"
	teamNamespace(t, ns)

	prices, err := finops.ParsePrices([]byte(claimsPrices))
	if err != nil {
		t.Fatal(err)
	}
	logs, decisions := &proc.Buffer{}, &proc.Buffer{}
	stop, _, err := startServer(ctx, serverOptions{
		name: "tollgate-claims", log: logs, decisions: decisions, configName: "tollgate-claims",
		config: claimsConfig, prices: prices, noAudit: true,
		// The budget scanner counts the claims in the Budget's status.
		scanInterval: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		stop()
		for _, obj := range []client.Object{
			&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tollgate-claims"}},
			&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tollgate-claims"}},
		} {
			_ = env.client.Delete(ctx, obj)
		}
		if t.Failed() {
			t.Logf("claims server log (last 8 KiB):\n%s", tail(logs.String(), 8<<10))
		}
	})

	// The generated webhook configurations intercept the governed kind.
	eventually(t, time.Minute, func() error {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate-claims"}, &vwc); err != nil {
			return err
		}
		for _, r := range vwc.Webhooks[0].Rules {
			if len(r.APIGroups) == 1 && r.APIGroups[0] == "database.example.org" && strings.Contains(strings.Join(r.Resources, ","), "postgresqlinstances") {
				return nil
			}
		}
		return fmt.Errorf("no rule for postgresqlinstances yet: %+v", vwc.Webhooks[0].Rules)
	})

	// Above the cap: denied, with the class, its monthly price and the cap.
	big := postgresClaim(ns, "analytics", `"instanceClass":"db.m5.4xlarge","storageClass":"gp3","storageGB":500`)
	wantDeny := `[cloud-instance-size] spec.parameters.instanceClass: instance class "db.m5.4xlarge", USD 998.64 a month is above the "db.m5.large" cap of profile "golden" without approval`
	var stderr string
	eventually(t, time.Minute, func() error {
		_, stderr, err = apply(t, big, "--dry-run=server")
		if err == nil || !strings.Contains(stderr, "cloud-instance-size") {
			return fmt.Errorf("not denied by the size cap yet (webhook registration): %w\n%s", err, stderr)
		}
		return nil
	})
	if !strings.Contains(stderr, wantDeny) {
		t.Errorf("dry-run denial:\n%s\nwant %s", stderr, wantDeny)
	}
	if _, stderr, err = apply(t, big); err == nil || !strings.Contains(stderr, wantDeny) {
		t.Errorf("denial: %v\n%s\nwant %s", err, stderr, wantDeny)
	}

	// A class the platform does not offer, and a claim without a class,
	// cannot be sized: denied, naming the field.
	if _, stderr, err = apply(t, postgresClaim(ns, "odd", `"instanceClass":"db.r6g.large","storageClass":"gp3","storageGB":10`), "--dry-run=server"); err == nil ||
		!strings.Contains(stderr, `instance class "db.r6g.large" is not one the platform offers`) {
		t.Errorf("unknown class: %v\n%s", err, stderr)
	}
	if _, stderr, err = apply(t, postgresClaim(ns, "bare", `"storageClass":"gp3","storageGB":10`), "--dry-run=server"); err == nil ||
		!strings.Contains(stderr, `PostgreSQLInstance "bare" has no instance class at spec.parameters.instanceClass`) {
		t.Errorf("no class: %v\n%s", err, stderr)
	}

	// The budget gate prices a claim like a workload: a Budget that warns
	// says what it adds. db.m5.large: 0.171 × 730 = $124.83, and 100 GB
	// of gp3 at $0.08: $8.00.
	b := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "databases"},
		Spec: v1alpha1.BudgetSpec{Amount: "100", Action: "warn"}}
	if err := env.client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(ctx, b) })
	orders := postgresClaim(ns, "orders", `"instanceClass":"db.m5.large","storageClass":"gp3","storageGB":100`)
	wantBudget := "[budget/claims/databases] this adds $132.83/month; namespace claims is forecast at $0.00 of its $100.00 monthly budget (claims/databases), $132.83 with this change"
	eventually(t, 30*time.Second, func() error {
		_, stderr, err = apply(t, orders, "--dry-run=server")
		if err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		if !strings.Contains(stderr, "[budget/claims/databases]") {
			return fmt.Errorf("no budget warning yet (the Budget cache): %s", stderr)
		}
		return nil
	})
	if !strings.Contains(stderr, wantBudget) {
		t.Errorf("budget warning:\n%s\nwant %s", stderr, wantBudget)
	}
	if _, stderr, err = apply(t, orders); err != nil {
		t.Fatalf("at the cap: %v\n%s", err, stderr)
	}

	// The stored claim carries the namespace's ownership labels (the
	// cost-center among them), injected at admission.
	stored := &unstructured.Unstructured{}
	stored.SetAPIVersion("database.example.org/v1alpha1")
	stored.SetKind("PostgreSQLInstance")
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "orders"}, stored); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"team": "payments", "owner": "alice", "cost-center": "CC-1234", "environment": "prod"} {
		if got := stored.GetLabels()[k]; got != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, got, v, stored.GetLabels())
		}
	}
	// What the cluster stored is priced as the CLI prices it.
	cfg, err := policies.ParseConfig([]byte(claimsConfig))
	if err != nil {
		t.Fatal(err)
	}
	est, err := finops.NewEstimator(finops.EstimateOptions{Prices: prices, GovernedKinds: cfg.GovernedKinds})
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := est.Estimate(stored.Object)
	if err != nil || !ok || finops.Amount(e.Monthly.Total) != "132.83" {
		t.Errorf("estimate of the stored claim: %+v, %v, %v; want 132.83 a month", e, ok, err)
	}

	// The budget scanner lists the claim and counts it in the Budget's
	// hourly rate and forecast ($132.83 / 730 = $0.1820 an hour), so the
	// gate, which forgets what a scan has counted, does not add it twice.
	eventually(t, time.Minute, func() error {
		var got v1alpha1.Budget
		if err := env.client.Get(ctx, client.ObjectKeyFromObject(b), &got); err != nil {
			return err
		}
		if got.Status.HourlyRate != "0.1820" {
			return fmt.Errorf("hourlyRate %q, want 0.1820 once a scan counts orders", got.Status.HourlyRate)
		}
		return nil
	})
	out, err := console(t, "", "get", "budgets", "-n", ns)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	docexample.Check(t, root, "e2e-claims-budget", out)
	small := postgresClaim(ns, "cache", `"instanceClass":"db.t3.micro","storageClass":"gp3","storageGB":10`)
	eventually(t, 30*time.Second, func() error {
		var got v1alpha1.Budget
		if err := env.client.Get(ctx, client.ObjectKeyFromObject(b), &got); err != nil {
			return err
		}
		status, err := strconv.ParseFloat(got.Status.Forecast, 64)
		if err != nil {
			return fmt.Errorf("status.forecast %q: %w", got.Status.Forecast, err)
		}
		_, stderr, err = apply(t, small, "--dry-run=server")
		if err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		_, rest, ok := strings.Cut(stderr, "namespace claims is forecast at $")
		gate, _, _ := strings.Cut(rest, " of its")
		seen, perr := strconv.ParseFloat(gate, 64)
		if !ok || perr != nil {
			return fmt.Errorf("no forecast in the budget warning: %s", stderr)
		}
		// The status is read a moment before the gate's cache: a cent apart
		// at most, never the claim's $132.83.
		if math.Abs(seen-status) > 0.05 {
			return fmt.Errorf("the gate forecasts $%.2f, the Budget's status $%.2f: orders counted twice? (the Budget cache may lag)", seen, status)
		}
		return nil
	})

	// An approved exception is the approval: in the designated namespace,
	// naming the approver and the ticket.
	teamNamespace(t, "platform-exceptions")
	x := &v1alpha1.TollgateException{
		ObjectMeta: metav1.ObjectMeta{Namespace: "platform-exceptions", Name: "analytics-db"},
		Spec: v1alpha1.TollgateExceptionSpec{
			Policies: []string{"cloud-instance-size"},
			Match:    v1alpha1.ExceptionMatch{Namespaces: []string{ns}, Kinds: []string{"database.example.org/PostgreSQLInstance"}, Names: []string{"analytics"}},
			Reason:   "quarter-end analytics needs the memory", Ticket: "FIN-4821", Approver: "dana@platform",
			Expiry: metav1.NewTime(time.Now().Add(24 * time.Hour)),
		},
	}
	if err := env.client.Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.client.Delete(ctx, x) })
	eventually(t, 30*time.Second, func() error {
		if _, stderr, err = apply(t, big); err != nil {
			return fmt.Errorf("not admitted yet (the exception cache): %w\n%s", err, stderr)
		}
		return nil
	})
	if !strings.Contains(decisions.String(), "FIN-4821") {
		t.Errorf("the decision log does not name the exception's ticket:\n%s", tail(decisions.String(), 4<<10))
	}
}

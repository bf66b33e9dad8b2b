package finops

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-dev/tollgate/policies"
)

const cloudPrices = `
currencyCode: USD
cloud:
  instanceClasses:
    db.t3.micro: "0.017"
    db.m5.large: 0.171
  storageClasses:
    gp3: "0.08"
`

var postgres = []policies.GovernedKind{{
	Group: "database.example.org", Kind: "PostgreSQLInstance",
	Pricing: []policies.PriceLine{
		{Class: policies.PriceInstance, Key: "spec.parameters.instanceClass"},
		{Class: policies.PriceStorage, Key: "spec.parameters.storageClass", Quantity: "spec.parameters.storageGB"},
	},
}}

func dbClaim(params string) string {
	return `apiVersion: database.example.org/v1alpha1
kind: PostgreSQLInstance
metadata: {name: orders, namespace: shop}
spec:
  parameters: {` + params + `}
`
}

func cloudEstimator(t *testing.T) *Estimator {
	t.Helper()
	p, err := ParsePrices([]byte(cloudPrices))
	if err != nil {
		t.Fatal(err)
	}
	return estimator(t, EstimateOptions{Prices: p, GovernedKinds: postgres})
}

func TestParsePricesCloud(t *testing.T) {
	p, err := ParsePrices([]byte(cloudPrices))
	if err != nil {
		t.Fatal(err)
	}
	want := CloudPrices{
		InstanceClasses: map[string]float64{"db.t3.micro": 0.017, "db.m5.large": 0.171},
		StorageClasses:  map[string]float64{"gp3": 0.08},
	}
	if diff := cmp.Diff(want, p.Cloud); diff != "" {
		t.Errorf("cloud (-want +got):\n%s", diff)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestParsePricesCloudErrors(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"negative", `cloud: {instanceClasses: {db.m5.large: "-0.1"}}`, `prices: cloud.instanceClasses["db.m5.large"]: -0.1 is not a price: it must be finite and not negative`},
		{"not a number", `cloud: {storageClasses: {gp3: cheap}}`, `prices: cloud.storageClasses["gp3"]: "cheap" is not a number (want currency units per GB-month`},
		{"empty price", `cloud: {instanceClasses: {db.m5.large: ""}}`, `prices: cloud.instanceClasses["db.m5.large"]: no price given`},
		{"a list", `cloud: {instanceClasses: [db.m5.large]}`, `prices: cloud.instanceClasses: is a list, want a mapping of class names to prices`},
		{"unknown key", `cloud: {instanceClass: {}}`, `prices: cloud.instanceClass: unknown key (want one of instanceClasses, storageClasses)`},
		{"other key", `cloud: {buckets: {}}`, `prices: cloud.buckets: unknown key (want one of instanceClasses, storageClasses)`},
		{"not a mapping", `cloud: 3`, `prices: cloud: is the number 3, want a mapping`},
		{"wrong case", `Cloud: {}`, `prices: Cloud: unknown key; did you mean "cloud"?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePrices([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
	p := DefaultPrices()
	p.Cloud.InstanceClasses = map[string]float64{"db.x": math.NaN()}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), `cloud.instanceClasses["db.x"]`) {
		t.Errorf("Validate of a NaN price: %v", err)
	}
}

func TestEstimateGovernedKind(t *testing.T) {
	e := cloudEstimator(t)
	est, ok, err := e.Estimate(object(t, dbClaim("instanceClass: db.m5.large, storageClass: gp3, storageGB: 100")))
	if err != nil || !ok {
		t.Fatalf("ok %v, error %v", ok, err)
	}
	want := []CloudCharge{
		{Class: "instance", Name: "db.m5.large", Quantity: 1, Price: 0.171, Monthly: 0.171 * HoursPerMonth},
		{Class: "storage", Name: "gp3", Quantity: 100, Price: 0.08, Monthly: 8},
	}
	if diff := cmp.Diff(want, est.Cloud, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("charges (-want +got):\n%s", diff)
	}
	if total := 0.171*HoursPerMonth + 8; math.Abs(est.Monthly.Total-total) > 1e-9 || math.Abs(est.Monthly.Cloud-total) > 1e-9 {
		t.Errorf("monthly %+v, want cloud and total %v", est.Monthly, total)
	}
	// A quantity written as a Kubernetes quantity is read in GiB.
	est, _, err = e.Estimate(object(t, dbClaim(`instanceClass: db.t3.micro, storageClass: gp3, storageGB: "50Gi"`)))
	if err != nil || est.Cloud[1].Quantity != 50 {
		t.Errorf("storage 50Gi: %+v, %v", est.Cloud, err)
	}
	// A kind not governed costs nothing by itself.
	if _, ok, _ := estimator(t, EstimateOptions{}).Estimate(object(t, dbClaim("instanceClass: db.m5.large"))); ok {
		t.Error("priced a kind no config governs")
	}
}

func TestEstimateGovernedKindErrorsNameTheField(t *testing.T) {
	e := cloudEstimator(t)
	for _, tt := range []struct{ name, params, path, want string }{
		{"missing class", "storageClass: gp3, storageGB: 10", "spec.parameters.instanceClass", "missing; PostgreSQLInstance is priced by this field"},
		{"unknown class", "instanceClass: db.x9.huge, storageClass: gp3, storageGB: 10", "spec.parameters.instanceClass",
			`instance class "db.x9.huge" is not in the price catalogue's cloud.instanceClasses (db.m5.large, db.t3.micro)`},
		{"class not a string", "instanceClass: 5, storageClass: gp3, storageGB: 10", "spec.parameters.instanceClass", "is the number 5, want the name of a instance class"},
		{"missing quantity", "instanceClass: db.m5.large, storageClass: gp3", "spec.parameters.storageGB", "missing; PostgreSQLInstance's quantity is read from this field"},
		{"bad quantity", "instanceClass: db.m5.large, storageClass: gp3, storageGB: lots", "spec.parameters.storageGB", `"lots" is neither a number nor a quantity`},
		{"negative quantity", "instanceClass: db.m5.large, storageClass: gp3, storageGB: -5", "spec.parameters.storageGB", "-5 is not a quantity to charge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, err := e.Estimate(object(t, dbClaim(tt.params)))
			var fe *FieldError
			if !ok || !errors.As(err, &fe) {
				t.Fatalf("ok %v, error %v; want a FieldError", ok, err)
			}
			if got := policies.FormatPath(fe.Path); got != tt.path || !strings.Contains(fe.Msg, tt.want) {
				t.Errorf("error at %s: %s; want at %s: %s", got, fe.Msg, tt.path, tt.want)
			}
		})
	}
	// A catalogue without a cloud section says so.
	_, _, err := estimator(t, EstimateOptions{GovernedKinds: postgres}).Estimate(object(t, dbClaim("instanceClass: db.m5.large")))
	if err == nil || !strings.Contains(err.Error(), "which lists no cloud.instanceClasses") {
		t.Errorf("default catalogue: %v", err)
	}
}

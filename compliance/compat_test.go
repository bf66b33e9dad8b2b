package compliance_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/webhook"
)

// TestReadsWhatServeWrites: the report reads the decision log as `tollgate
// serve` writes it. (An external test package: the webhook may import
// this package for the audit.)
func TestReadsWhatServeWrites(t *testing.T) {
	var buf bytes.Buffer
	log := webhook.NewDecisionLog(&buf)
	at := time.Date(2025, 6, 30, 12, 0, 0, 0, time.UTC)
	for _, e := range []*webhook.DecisionEntry{
		{Time: at, UID: "1", User: "alice", Operation: "CREATE", Kind: "Pod", Namespace: "ns", Name: "a", Allowed: false, Authenticated: true,
			Findings: []policies.Finding{{Policy: "pss-baseline-privileged", Message: "privileged", Action: policies.ActionEnforce,
				Controls: []policies.Control{{Framework: "cis", ID: "5.2.2"}}}}},
		{Time: at, UID: "2", User: "alice", Operation: "CREATE", Kind: "Pod", Namespace: "ns", Name: "a", Allowed: false, DryRun: true, Authenticated: true,
			Findings: []policies.Finding{{Policy: "pss-baseline-privileged", Message: "privileged", Action: policies.ActionEnforce}}},
		{Time: at, UID: "3", User: "bob", Operation: "UPDATE", Kind: "Deployment", Namespace: "ns", Name: "b", Allowed: true, Authenticated: true,
			Findings: []policies.Finding{{Policy: "images-no-latest", Message: "latest", Action: policies.ActionWarn}}},
	} {
		if err := log.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	var d compliance.Denials
	if err := d.ReadDecisionLog(&buf, compliance.DecisionLogOptions{}); err != nil {
		t.Fatal(err)
	}
	if d.Malformed != 0 || d.Denied != 1 || d.Warned != 1 || d.DryRun != 1 || len(d.ByPolicy) != 2 {
		t.Fatalf("%+v", d)
	}
	if x := d.ByPolicy[1].Latest[0]; x.Policy != "pss-baseline-privileged" || x.User != "alice" || x.Resource.String() != "ns/Pod/a" || x.Operation != "CREATE" {
		t.Errorf("example %+v", x)
	}
}

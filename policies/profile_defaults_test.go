package policies

import (
	"strings"
	"testing"
)

// TestProfileNamespaceDefaultsInvalid: namespace defaults that could not
// be generated (or that the API server would refuse) are refused where
// the profile is read, naming the profile and the field, every one at
// once.
func TestProfileNamespaceDefaultsInvalid(t *testing.T) {
	cases := []struct {
		name, spec string
		want       []string
	}{
		{"an empty namespace selector", `{namespaceDefaults: {networkPolicy: {ingressFromNamespaces: [{team: platform}, {}]}}}`,
			[]string{"TollgateProfile golden: spec.namespaceDefaults.networkPolicy.ingressFromNamespaces[1]: empty (it would allow every namespace)"}},
		{"amounts a Budget refuses", `{budget: {amount: 5k, thresholds: [80, 0, -5]}}`, []string{
			`TollgateProfile golden: spec.budget.amount: "5k" is not an amount (a decimal such as 5000 or 1250.50, as a Budget takes it)`,
			"TollgateProfile golden: spec.budget.thresholds[1]: 0 is not a percentage above 0",
			"TollgateProfile golden: spec.budget.thresholds[2]: -5 is not a percentage above 0",
		}},
		{"a quota quantity", `{namespaceDefaults: {resourceQuota: {hard: {requests.cpu: "4", limits.memory: lots}}}}`,
			[]string{`TollgateProfile golden: spec.namespaceDefaults.resourceQuota.hard["limits.memory"]: "lots" is not a quantity`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProfile("TollgateProfile golden: spec", "golden", []byte(tc.spec))
			if err == nil || p != nil {
				t.Fatalf("ParseProfile = %v, %v; want an error", p, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
	if _, err := ParseProfile("TollgateProfile golden: spec", "golden", []byte(`{budget: {amount: "1250.50", thresholds: [50, 100]}, namespaceDefaults: {networkPolicy: {ingressFromNamespaces: [{team: platform}]}}}`)); err != nil {
		t.Errorf("a valid profile: %v", err)
	}
}

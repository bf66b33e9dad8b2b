package alerts

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestRoutesYAML reads routes written as the Routes documentation shows.
func TestRoutesYAML(t *testing.T) {
	doc := `
default: platform-finops
channels:
  platform-finops:
    type: slack
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: platform-finops}
  payments-teams:
    type: teams
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: payments-teams}
  finops-events:
    type: cloudevents
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: events}
`
	var got Routes
	if err := yaml.UnmarshalStrict([]byte(doc), &got); err != nil {
		t.Fatal(err)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	ref := func(key string) SecretKeyRef {
		return SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: key}
	}
	want := Routes{Default: "platform-finops", Channels: map[string]Channel{
		"platform-finops": {Type: Slack, URLSecret: ref("platform-finops")},
		"payments-teams":  {Type: Teams, URLSecret: ref("payments-teams")},
		"finops-events":   {Type: CloudEvents, URLSecret: ref("events")},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

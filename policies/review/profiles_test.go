package review_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
)

const profilesConfig = `
profiles:
  default: golden
  changers:
    users: [platform-admin]
    groups: [platform-team]
  definitions:
    golden:
      policies:
        bad-label: enforce
        K8sBroken/*: enforce
    innovation:
      notice: "not on the golden path: no platform backups or monitoring"
      policies:
        "*": warn
        K8sAudit/only: disabled
    sandbox:
      policies:
        bad-label: disabled
        K8sBroken/enforced: audit
`

func profileSet(t *testing.T) *review.Set {
	t.Helper()
	cfg, err := policies.ParseConfig([]byte(profilesConfig))
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Config: cfg, Modules: []policies.Module{{Name: "bad.rego", Text: badLabel}}})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	gk := fixed{calls: &calls,
		decision: policies.Decision{Findings: []policies.Finding{
			{Policy: "K8sRequiredLabels/team", Message: "needs team", Action: policies.ActionEnforce},
			{Policy: "K8sAudit/only", Message: "recorded", Action: policies.ActionAudit},
		}, Errors: []*policies.PolicyError{{Policy: "K8sBroken/enforced", Err: errors.New("boom")}}},
		metas: []policies.Metadata{
			{ID: "K8sRequiredLabels/team", Action: policies.ActionEnforce},
			{ID: "K8sAudit/only", Action: policies.ActionAudit},
			{ID: "K8sBroken/enforced", Action: policies.ActionEnforce},
		},
	}
	return review.NewSet(e, nil, 1, review.Plugin{Name: "gatekeeper", Evaluator: gk})
}

func namespaceObject(name string, labels map[string]any) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": labels}}
}

// The same object is judged by its namespace's profile: enforced on the
// golden path (and where the label names no profile, or there is none),
// warned with the notice on the innovation path, a policy disabled on
// the sandbox path, and a policy that errors fails closed only where its
// profile enforces it.
func TestProfileActions(t *testing.T) {
	s := profileSet(t)
	r := review.New(review.Options{})
	cases := []struct {
		name, profile string
		namespace     map[string]any
		denials, warn []string
		audited       []string
	}{
		{
			name: "golden (the label)", profile: "golden",
			namespace: namespaceObject("shop", map[string]any{"tollgate.dev/path": "golden"}),
			denials:   []string{"[bad-label] metadata.labels.bad: labelled bad", "[K8sRequiredLabels/team] needs team", "[K8sBroken/enforced] could not be evaluated: boom"},
			audited:   []string{"K8sAudit/only"},
		},
		{
			name: "no label: the default", profile: "golden",
			namespace: namespaceObject("shop", nil),
			denials:   []string{"[bad-label] metadata.labels.bad: labelled bad", "[K8sRequiredLabels/team] needs team", "[K8sBroken/enforced] could not be evaluated: boom"},
			audited:   []string{"K8sAudit/only"},
		},
		{
			name: "a label naming no profile: the default", profile: "golden",
			namespace: namespaceObject("shop", map[string]any{"tollgate.dev/path": "wild-west"}),
			denials:   []string{"[bad-label] metadata.labels.bad: labelled bad", "[K8sRequiredLabels/team] needs team", "[K8sBroken/enforced] could not be evaluated: boom"},
			audited:   []string{"K8sAudit/only"},
		},
		{
			name: "innovation warns, with its notice first", profile: "innovation",
			namespace: namespaceObject("lab", map[string]any{"tollgate.dev/path": "innovation"}),
			warn: []string{
				"not on the golden path: no platform backups or monitoring",
				"[bad-label] metadata.labels.bad: labelled bad",
				"[K8sRequiredLabels/team] needs team",
				"[K8sBroken/enforced] could not be evaluated: boom",
			},
		},
		{
			name: "sandbox disables one policy and audits another's errors", profile: "sandbox",
			namespace: namespaceObject("play", map[string]any{"tollgate.dev/path": "sandbox"}),
			denials:   []string{"[K8sRequiredLabels/team] needs team"},
			warn:      []string{"[K8sBroken/enforced] could not be evaluated: boom"},
			audited:   []string{"K8sAudit/only"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := policies.ObjectInput(policies.SourceAudit, pod(map[string]any{"bad": "true"}), tc.namespace)
			v := r.Review(context.Background(), s, in)
			if v.Profile != tc.profile {
				t.Errorf("profile %q, want %q", v.Profile, tc.profile)
			}
			if diff := cmp.Diff(tc.denials, v.Denials); diff != "" {
				t.Errorf("denials (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warn, v.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			var audited []string
			for _, f := range v.Findings {
				if f.Action == policies.ActionAudit {
					audited = append(audited, f.Policy)
				}
			}
			if diff := cmp.Diff(tc.audited, audited); diff != "" {
				t.Errorf("audited (-want +got):\n%s", diff)
			}
		})
	}
}

// Moving a namespace between profiles is for profiles.changers: anyone
// else is denied, a changer's move is recorded with who and what, a
// label naming no profile is denied to everyone, and a change that
// leaves the profile as it was finds nothing.
func TestProfileChange(t *testing.T) {
	s := profileSet(t)
	r := review.New(review.Options{})
	alice := &policies.UserInfo{Username: "alice", Groups: []string{"developers"}}
	admin := &policies.UserInfo{Username: "platform-admin"}
	teamMember := &policies.UserInfo{Username: "carol", Groups: []string{"system:authenticated", "platform-team"}}
	golden := map[string]any{"tollgate.dev/path": "golden"}
	innovation := map[string]any{"tollgate.dev/path": "innovation"}
	cases := []struct {
		name     string
		op       string
		user     *policies.UserInfo
		old, obj map[string]any
		want     []policies.Finding
	}{
		{name: "a developer moves off the golden path", op: "UPDATE", user: alice, old: golden, obj: innovation,
			want: []policies.Finding{{Action: policies.ActionEnforce, Message: `namespace team-a: moving from profile "golden" to "innovation" is for the platform team (profiles.changers); alice is not among them`,
				Details: map[string]string{"namespace": "team-a", "from": "golden", "to": "innovation", "user": "alice"}}}},
		{name: "a developer creates a namespace off the golden path", op: "CREATE", user: alice, obj: innovation,
			want: []policies.Finding{{Action: policies.ActionEnforce, Message: `namespace team-a: moving from profile "golden" to "innovation" is for the platform team (profiles.changers); alice is not among them`,
				Details: map[string]string{"namespace": "team-a", "from": "golden", "to": "innovation", "user": "alice"}}}},
		{name: "a developer removing the label moves back to the default", op: "UPDATE", user: alice, old: innovation, obj: nil,
			want: []policies.Finding{{Action: policies.ActionEnforce, Message: `namespace team-a: moving from profile "innovation" to "golden" is for the platform team (profiles.changers); alice is not among them`,
				Details: map[string]string{"namespace": "team-a", "from": "innovation", "to": "golden", "user": "alice"}}}},
		{name: "a changer by name", op: "UPDATE", user: admin, old: golden, obj: innovation,
			want: []policies.Finding{{Action: policies.ActionAudit, Message: `namespace team-a moved from profile "golden" to "innovation" by platform-admin`,
				Details: map[string]string{"namespace": "team-a", "from": "golden", "to": "innovation", "user": "platform-admin"}}}},
		{name: "a changer by group", op: "UPDATE", user: teamMember, old: nil, obj: innovation,
			want: []policies.Finding{{Action: policies.ActionAudit, Message: `namespace team-a moved from profile "golden" to "innovation" by carol`,
				Details: map[string]string{"namespace": "team-a", "from": "golden", "to": "innovation", "user": "carol"}}}},
		{name: "no user at all", op: "UPDATE", user: nil, old: golden, obj: innovation,
			want: []policies.Finding{{Action: policies.ActionEnforce, Message: `namespace team-a: moving from profile "golden" to "innovation" is for the platform team (profiles.changers); an unknown user is not among them`,
				Details: map[string]string{"namespace": "team-a", "from": "golden", "to": "innovation", "user": ""}}}},
		{name: "a label naming no profile, even by a changer", op: "UPDATE", user: admin, old: golden, obj: map[string]any{"tollgate.dev/path": "wild-west"},
			want: []policies.Finding{{Action: policies.ActionEnforce, Message: `namespace team-a: tollgate.dev/path "wild-west" names no profile (profiles: golden, innovation, sandbox)`,
				Details: map[string]string{"namespace": "team-a", "to": "wild-west"}}}},
		{name: "the label written as it was", op: "UPDATE", user: alice, old: innovation, obj: innovation},
		{name: "the default named explicitly", op: "UPDATE", user: alice, old: nil, obj: golden},
		{name: "a new namespace on the default", op: "CREATE", user: alice, obj: golden},
		{name: "a label that names the profile it already had by default", op: "CREATE", user: alice, obj: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &policies.Input{Kind: policies.GroupVersionKind{Version: "v1", Kind: "Namespace"}, Operation: tc.op, UserInfo: tc.user,
				Object: namespaceObject("team-a", tc.obj), Source: policies.SourceAdmission}
			if tc.op == "UPDATE" {
				in.OldObject = namespaceObject("team-a", tc.old)
			}
			v := r.Review(context.Background(), s, in)
			var got []policies.Finding
			for _, f := range v.Findings {
				if f.Policy == review.ProfilePolicy {
					got = append(got, policies.Finding{Action: f.Action, Message: f.Message, Details: f.Details})
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			denied := len(tc.want) > 0 && tc.want[0].Action == policies.ActionEnforce
			deniedByMove := false
			for _, d := range v.Denials {
				deniedByMove = deniedByMove || strings.HasPrefix(d, "["+review.ProfilePolicy+"]")
			}
			if denied != deniedByMove {
				t.Errorf("denied by the move %v, want %v: %q", deniedByMove, denied, v.Denials)
			}
		})
	}

	// The audit judges stored namespaces, never a move.
	in := policies.ObjectInput(policies.SourceAudit, namespaceObject("team-a", innovation), nil)
	for _, f := range r.Review(context.Background(), s, in).Findings {
		if f.Policy == review.ProfilePolicy {
			t.Errorf("the audit judged a move: %+v", f)
		}
	}
	// Namespaces are intercepted once profiles exist.
	_, validate := review.Kinds(s)
	found := false
	for _, gk := range validate {
		found = found || gk.Group == "" && gk.Kind == "Namespace"
	}
	if !found {
		t.Errorf("Namespace not among the validated kinds %v", validate)
	}
}

// A profile that names a policy the set does not hold is named, field by
// field, so a typo cannot leave a policy at its old action.
func TestProfileProblems(t *testing.T) {
	cfg, err := policies.ParseConfig([]byte(`
profiles:
  default: golden
  definitions:
    golden:
      policies:
        bad-lable: enforce
        "pss-*": enforce
        bad-label: enforce
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Config: cfg, Modules: []policies.Module{{Name: "bad.rego", Text: badLabel}}})
	if err != nil {
		t.Fatal(err)
	}
	got := review.NewSet(e, nil, 1).ProfileProblems()
	want := map[string][]string{"golden": {
		"profile golden.policies.bad-lable: no policy has this id",
		`profile golden.policies["pss-*"]: this glob matches no policy`,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if !strings.Contains(strings.Join(got["golden"], ""), "bad-lable") {
		t.Error("the typo is not named")
	}
}

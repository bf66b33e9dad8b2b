package compliance

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

// TestBuiltinFrameworks: the embedded data loads, and agrees with the
// policy library both ways: every policy id a control lists exists, every
// control a library policy declares lists that policy, and every control a
// control lists a library policy for is declared by it.
func TestBuiltinFrameworks(t *testing.T) {
	fws := builtin(t)
	var ids []string
	for _, f := range fws {
		ids = append(ids, f.ID)
	}
	if diff := cmp.Diff([]string{"cis", "nsa", "pss", "soc2"}, ids); diff != "" {
		t.Fatalf("frameworks (-want +got):\n%s", diff)
	}
	meta := libraryPolicies(t)
	// Policy ids that are not the library's: image-signature and budget
	// findings, matched by prefix.
	patterns := []string{"image-policy/*", "budget/*"}
	declared := map[string]bool{} // "framework:control policy"
	for id, m := range meta {
		for _, c := range m.Controls {
			declared[c.String()+" "+id] = true
		}
	}
	listed := map[string]bool{}
	for i := range fws {
		fw := &fws[i]
		for j := range fw.Controls {
			c := &fw.Controls[j]
			for _, p := range c.Policies {
				if strings.HasSuffix(p, "*") {
					if !slices.Contains(patterns, p) {
						t.Errorf("%s:%s lists the pattern %q; known patterns are %v", fw.ID, c.ID, p, patterns)
					}
					continue
				}
				if _, ok := meta[p]; !ok {
					t.Errorf("%s:%s lists %q, which is not a policy of the library", fw.ID, c.ID, p)
					continue
				}
				key := fw.ID + ":" + c.ID + " " + p
				listed[key] = true
				if !declared[key] {
					t.Errorf("%s:%s lists %s, whose metadata does not declare the control", fw.ID, c.ID, p)
				}
			}
		}
	}
	for key := range declared {
		if !listed[key] {
			control, policy, _ := strings.Cut(key, " ")
			t.Errorf("%s declares the control %s, which no framework data maps to it", policy, control)
		}
	}
	// Every library policy with controls appears somewhere, and each
	// Pod Security Standards control is evidenced (none is manual).
	for id, m := range meta {
		if len(m.Controls) == 0 {
			continue
		}
		found := false
		for key := range listed {
			if strings.HasSuffix(key, " "+id) {
				found = true
			}
		}
		if !found {
			t.Errorf("library policy %s has controls but appears in no framework", id)
		}
	}
	for _, c := range fws[2].Controls {
		if c.Manual {
			t.Errorf("pss:%s is manual; the library implements every Pod Security Standards control", c.ID)
		}
	}
	if n := len(fws[2].Controls); n != 19 {
		t.Errorf("pss has %d controls; the standard (v1.35 and later) has 12 baseline and 7 restricted", n)
	}
}

// TestLoadFrameworksErrors: a bad data file is an error naming the file
// and the field.
func TestLoadFrameworksErrors(t *testing.T) {
	good := "id: x\nname: X\ncontrols:\n  - id: a\n    title: A\n    manual: true\n    reason: a process\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown field", map[string]string{"x.yaml": good + "    polices: [p]\n"},
			[]string{"x.yaml", "polices"}},
		{"not YAML", map[string]string{"x.yaml": "id: [\n"},
			[]string{"x.yaml", "yaml"}},
		{"empty", map[string]string{"x.yaml": ""},
			[]string{"x.yaml: empty file"}},
		{"duplicate control", map[string]string{"x.yaml": good + "  - id: a\n    title: again\n    manual: true\n    reason: r\n"},
			[]string{"x.yaml", "controls[1] (a).id: duplicate of controls[0]"}},
		{"manual with policies", map[string]string{"x.yaml": "id: x\nname: X\ncontrols:\n  - id: a\n    title: A\n    manual: true\n    policies: [p]\n"},
			[]string{"x.yaml", "controls[0] (a).policies: a manual control lists no policies"}},
		{"neither manual nor policies", map[string]string{"x.yaml": "id: x\nname: X\ncontrols:\n  - id: a\n    title: A\n"},
			[]string{"controls[0] (a).policies: list the policies"}},
		{"no title, no id", map[string]string{"x.yaml": "id: x\nname: X\ncontrols:\n  - title: ''\n    manual: true\n    reason: r\n"},
			[]string{"controls[0].id: required", "controls[0].title: required"}},
		{"manual without a reason", map[string]string{"x.yaml": "id: x\nname: X\ncontrols:\n  - id: a\n    title: A\n    manual: true\n  - id: b\n    title: B\n    manual: true\n    reason: '  '\n"},
			[]string{"controls[0] (a).reason: required for a manual control", "controls[1] (b).reason: required for a manual control"}},
		{"a reason without manual", map[string]string{"x.yaml": "id: x\nname: X\ncontrols:\n  - id: a\n    title: A\n    policies: [p]\n    reason: r\n"},
			[]string{"controls[0] (a).reason: only a manual control has a reason"}},
		{"bad pattern", map[string]string{"x.yaml": "id: x\nname: X\ncontrols:\n  - id: a\n    title: A\n    policies: ['*']\n"},
			[]string{`controls[0] (a).policies[0]: "*" is not a policy id`}},
		{"bad framework id", map[string]string{"x.yaml": "id: 'a:b'\nname: X\ncontrols:\n  - id: a\n    title: A\n    manual: true\n    reason: r\n"},
			[]string{`id: "a:b" may not contain`}},
		{"two files, one id", map[string]string{"a.yaml": good, "b.yml": good},
			[]string{`b.yml: id: framework "x" is also defined in a.yaml`}},
		{"oversized", map[string]string{"x.yaml": good + "# " + strings.Repeat("x", maxFrameworkFileBytes) + "\n"},
			[]string{"x.yaml: over the 1048576 byte limit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, text := range tc.files {
				fsys[name] = &fstest.MapFile{Data: []byte(text)}
			}
			_, err := LoadFrameworks(fsys)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestFrameworkOverrides: a directory's framework replaces the built-in
// one of the same id and adds new ones; selection by id.
func TestFrameworkOverrides(t *testing.T) {
	override, err := LoadFrameworks(fstest.MapFS{
		"cis.yaml":  {Data: []byte("id: cis\nname: CIS (ours)\ncontrols:\n  - id: '5.2.2'\n    title: Privileged\n    policies: [pss-baseline-privileged]\n")},
		"corp.yaml": {Data: []byte("id: corp\nname: Corp baseline\ncontrols:\n  - id: own-1\n    title: Owners\n    policies: [ownership-labels]\n")},
		"README.md": {Data: []byte("not a framework")},
	})
	if err != nil {
		t.Fatal(err)
	}
	all := MergeFrameworks(builtin(t), override)
	var names []string
	for _, f := range all {
		names = append(names, f.ID+"="+f.Name)
	}
	want := []string{"cis=CIS (ours)", "corp=Corp baseline", "nsa=NSA/CISA Kubernetes Hardening Guide", "pss=Pod Security Standards", "soc2=SOC 2 Trust Services Criteria"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("merged (-want +got):\n%s", diff)
	}
	sel, err := SelectFrameworks(all, "soc2,CIS", "cis")
	if err != nil || len(sel) != 2 || sel[0].ID != "soc2" || sel[1].ID != "cis" {
		t.Errorf("select soc2,CIS: %v %v", sel, err)
	}
	if sel, _ := SelectFrameworks(all, "all"); len(sel) != 5 {
		t.Errorf("all selects %d", len(sel))
	}
	if _, err := SelectFrameworks(all, "hipaa"); err == nil || !strings.Contains(err.Error(), `unknown framework "hipaa" (want cis, corp, nsa, pss, soc2 or all)`) {
		t.Errorf("unknown framework: %v", err)
	}
}

// TestControlVerdicts: the verdict logic on hand-made results.
func TestControlVerdicts(t *testing.T) {
	fw := Framework{ID: "fw", Name: "FW", Controls: []Control{
		{ID: "priv", Title: "Privileged", Policies: []string{"pss-baseline-privileged"}},
		{ID: "img", Title: "Images", Policies: []string{"image-policy/*"}},
		{ID: "rbac", Title: "RBAC", Manual: true},
	}}
	res := func(name string) Resource { return Resource{Kind: "Pod", Namespace: "ns", Name: name} }
	ref := &policies.ExceptionRef{Namespace: "px", Name: "waiver", Approver: "ciso", Reason: "r"}
	for _, tc := range []struct {
		name    string
		results []Result
		want    map[string]Verdict
	}{
		{"no results: passed", nil,
			map[string]Verdict{"priv": VerdictPassed, "img": VerdictPassed, "rbac": VerdictManual}},
		{"passes only", []Result{
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomePass, Resource: res("a")},
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomePass, Resource: res("b")},
		}, map[string]Verdict{"priv": VerdictPassed}},
		{"a failure fails", []Result{
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomePass, Resource: res("a")},
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomeFail, Resource: res("b")},
		}, map[string]Verdict{"priv": VerdictFailed}},
		{"warn and error fail too", []Result{
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomeError, Resource: res("a")},
			{Source: "tollgate", Policy: "image-policy/corp", Result: OutcomeWarn, Resource: res("a")},
		}, map[string]Verdict{"priv": VerdictFailed, "img": VerdictFailed}},
		{"waived: passed with exceptions", []Result{
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomeSkip, Exception: ref, Resource: res("a")},
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomePass, Resource: res("b")},
		}, map[string]Verdict{"priv": VerdictPassedWithExceptions}},
		{"waived and failing: failed", []Result{
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomeSkip, Exception: ref, Resource: res("a")},
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomeFail, Resource: res("b")},
		}, map[string]Verdict{"priv": VerdictFailed}},
		{"skip without exception: not applied", []Result{
			{Source: "tollgate", Policy: "pss-baseline-privileged", Result: OutcomeSkip, Resource: res("a")},
		}, map[string]Verdict{"priv": VerdictPassed}},
		{"another engine with the same policy name does not count", []Result{
			{Source: "kyverno", Policy: "pss-baseline-privileged", Result: OutcomeFail, Resource: res("a")},
		}, map[string]Verdict{"priv": VerdictPassed}},
		{"another engine naming the control counts", []Result{
			{Source: "kyverno", Policy: "disallow-privileged", Result: OutcomeFail, Resource: res("a"),
				Controls: []policies.Control{{Framework: "fw", ID: "priv"}}},
		}, map[string]Verdict{"priv": VerdictFailed}},
		{"a manual control is never decided by results", []Result{
			{Source: "trivy-operator", Policy: "KSV111", Result: OutcomePass, Resource: res("a"),
				Controls: []policies.Control{{Framework: "fw", ID: "rbac"}}},
		}, map[string]Verdict{"rbac": VerdictManual}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(Input{Frameworks: []Framework{fw}, Results: tc.results})
			got := map[string]Verdict{}
			for _, c := range r.Frameworks[0].Controls {
				if _, ok := tc.want[c.ID]; ok {
					got[c.ID] = c.Verdict
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestScore: passed with exceptions counts as passed, manual not at all,
// and a framework of manual controls has no score.
func TestScore(t *testing.T) {
	fw := Framework{ID: "fw", Name: "FW", Controls: []Control{
		{ID: "a", Title: "A", Policies: []string{"p1"}},
		{ID: "b", Title: "B", Policies: []string{"p2"}},
		{ID: "c", Title: "C", Policies: []string{"p3"}},
		{ID: "m", Title: "M", Manual: true},
	}}
	r := Build(Input{Frameworks: []Framework{fw}, Results: []Result{
		{Source: "tollgate", Policy: "p2", Result: OutcomeSkip, Exception: &policies.ExceptionRef{Name: "x"}},
		{Source: "tollgate", Policy: "p3", Result: OutcomeFail},
	}})
	s := r.Frameworks[0].Summary
	if s.Passed != 1 || s.PassedWithExceptions != 1 || s.Failed != 1 || s.Manual != 1 || s.Score == nil || *s.Score != 0.667 {
		t.Errorf("summary %+v score %v", s, s.Score)
	}
	r = Build(Input{Frameworks: []Framework{{ID: "m", Name: "M", Controls: []Control{{ID: "m", Title: "M", Manual: true}}}}})
	if r.Frameworks[0].Summary.Score != nil {
		t.Error("a framework of manual controls has a score")
	}
}

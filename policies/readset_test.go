package policies_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
)

const helpers = "package lib.t\n" +
	"cs contains {\"c\": c, \"i\": i} if some i, c in input.object.spec.containers\n" +
	"sc(w) := x if { x := w.c.securityContext; is_object(x) } else := {}\n" +
	"name(w) := n if { n := w.c.name; is_string(n) } else := \"\"\n" +
	"entry(e) := e if is_object(e)\n" +
	"entry(null) := {}\n" +
	"caps(w) := inner(w.c)\n" +
	"inner(c) := innermost(c.securityContext)\n" +
	"innermost(x) := x.capabilities\n" +
	"same(a, b) if a == b\n" +
	"wrap(c) := {\"c\": c}\n" +
	"fields := {\"containers\": 1, \"initContainers\": 2}\n"

// TestReads checks what the engine finds each shape of policy reads of its
// input: precise where the reads can be followed, the whole subtree (or the
// whole input, never cached) where they cannot, and never cached when the
// verdict does not follow from the input alone.
func TestReads(t *testing.T) {
	const whole = "reads the input in a way that cannot be bounded"
	for _, tc := range []struct {
		name        string
		body        string
		lib         string
		paths       []string
		uncacheable string
	}{{
		name:  "direct ref",
		body:  `violation contains "x" if input.object.metadata.name == "a"`,
		paths: []string{"input.object.metadata.name"},
	}, {
		name:  "wrapped by a partial set rule, read through a function",
		body:  `violation contains data.lib.t.name(w) if { some w in data.lib.t.cs; data.lib.t.sc(w).capabilities.drop[_] == "NET_RAW" }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_].name", "input.object.spec.containers[_].securityContext.capabilities.drop[_]"},
	}, {
		name:  "function result bound and followed",
		body:  `violation contains "x" if { some w in data.lib.t.cs; x := data.lib.t.sc(w); x.privileged }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_].securityContext.privileged"},
	}, {
		name:  "chain of helpers each passing a part on",
		body:  `violation contains "x" if { some w in data.lib.t.cs; data.lib.t.caps(w).add[_] == "SYS_ADMIN" }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_].securityContext.capabilities.add[_]"},
	}, {
		name:  "scalar argument pattern reads only the kind",
		body:  `violation contains "x" if { some c in input.object.spec.volumes; data.lib.t.entry(c).hostPath }`,
		lib:   helpers,
		paths: []string{"input.object.spec.volumes[_].hostPath"},
	}, {
		name:  "composite returned by a function",
		body:  `violation contains "x" if { some c in input.object.spec.containers; w := data.lib.t.wrap(c); w.c.image == "" }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_].image"},
	}, {
		name:  "set comprehension iterated",
		body:  `violation contains "x" if { s := {c | some c in input.object.spec.containers}; some c in s; c.image == "" }`,
		paths: []string{"input.object.spec.containers[_].image"},
	}, {
		name:  "array comprehension of input elements iterated",
		body:  `violation contains "x" if { a := [c.securityContext | some c in input.object.spec.containers]; some x in a; x.privileged }`,
		paths: []string{"input.object.spec.containers[_].securityContext.privileged"},
	}, {
		name:  "object built in the body",
		body:  `violation contains "x" if { some c in input.object.spec.containers; o := {"c": c, "k": "v"}; o.c.image == "" }`,
		paths: []string{"input.object.spec.containers[_].image"},
	}, {
		name:  "key of a constant object names the members read",
		body:  `violation contains "x" if { some f, _ in data.lib.t.fields; some c in input.object.spec[f]; c.image == "" }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_].image", "input.object.spec.initContainers[_].image"},
	}, {
		name:  "function called under with reads its arguments whole",
		body:  `violation contains "x" if { some w in data.lib.t.cs; data.lib.t.sc(w).privileged with lower as upper }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "set element compared whole",
		body:  `violation contains "x" if { some w in data.lib.t.cs; w.c == {"name": "a"} }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "set element marshalled",
		body:  `violation contains json.marshal(w) if { some w in data.lib.t.cs }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "set counted",
		body:  `violation contains "x" if count(data.lib.t.cs) > 1`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "set elements counted by an array comprehension",
		body:  `violation contains "x" if count([1 | some w in data.lib.t.cs; w.c.image]) > 1`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "set looked up by a value",
		body:  `violation contains "x" if { k := {"c": {}, "i": 0}; w := data.lib.t.cs[k]; w.c.image }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "arguments compared whole inside a function",
		body:  `violation contains "x" if { some w in data.lib.t.cs; data.lib.t.same(w, {}) }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "function result compared whole",
		body:  `violation contains "x" if { some c in input.object.spec.containers; data.lib.t.wrap(c) == {"c": {}} }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "composite passed to a builtin",
		body:  `violation contains "x" if { some c in input.object.spec.containers; o := {"c": c}; json.marshal(o) == "" }`,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "iteration through a variable",
		body:  `violation contains c.name if { some c in input.object.spec.containers; c.securityContext.privileged }`,
		paths: []string{"input.object.spec.containers[_].name", "input.object.spec.containers[_].securityContext.privileged"},
	}, {
		name:  "key and value iteration",
		body:  `violation contains k if { some k, v in input.object.metadata.labels; v == "x" }`,
		paths: []string{"input.object.metadata.labels[_]"},
	}, {
		name:  "every",
		body:  `violation contains "x" if { cs := input.object.spec.containers; every c in cs { c.image != "" } }`,
		paths: []string{"input.object.spec.containers[_].image"},
	}, {
		name:  "type check reads only the kind",
		body:  `violation contains "x" if { s := input.object.spec; is_object(s); s.replicas > 3 }`,
		paths: []string{"input.object.spec.replicas"},
	}, {
		name:  "type check alone",
		body:  `violation contains "x" if is_array(input.object.spec.volumes)`,
		paths: []string{"input.object.spec.volumes (type)"},
	}, {
		name:  "value passed to a function is read whole",
		body:  `violation contains "x" if count(input.object.spec.containers) > 2`,
		paths: []string{"input.object.spec.containers"},
	}, {
		name:  "value compared twice is read whole",
		body:  `violation contains "x" if { x := input.object.metadata.name; x == input.object.metadata.namespace }`,
		paths: []string{"input.object.metadata.name", "input.object.metadata.namespace"},
	}, {
		name:  "variable bound twice compares",
		body:  `violation contains "x" if { x := input.object.a; x = input.object.b }`,
		paths: []string{"input.object.a", "input.object.b"},
	}, {
		name:  "variable copied then followed",
		body:  `violation contains "x" if { x := input.object.spec; y := x; y.replicas > 1 }`,
		paths: []string{"input.object.spec.replicas"},
	}, {
		name:  "variable copied to one that is compared",
		body:  `violation contains "x" if { y := input.object.a; x := y; x == "foo" }`,
		paths: []string{"input.object.a"},
	}, {
		name:  "function result copied to one that is compared",
		body:  `violation contains "x" if { some w in data.lib.t.cs; n := data.lib.t.name(w); not data.lib.t.fields[n] }`,
		lib:   helpers,
		paths: []string{"input.object.spec.containers[_].name"},
	}, {
		name:  "argument read in an else branch",
		body:  `violation contains "x" if { some c in input.object.spec.containers; data.lib.t.level(c) == 2 }`,
		lib:   "package lib.t\nlevel(c) := 1 if c.privileged else := 2 if c.securityContext.runAsUser == 0 else := 3",
		paths: []string{"input.object.spec.containers[_].privileged", "input.object.spec.containers[_].securityContext.runAsUser"},
	}, {
		name:  "composite built from input is followed",
		body:  `violation contains "x" if { s := input.object.spec; v := [s]; v[0].replicas > 1 }`,
		paths: []string{"input.object.spec.replicas"},
	}, {
		name:  "comprehension head is read whole",
		body:  `violation contains "x" if { names := [c | c := input.object.spec.containers[_]]; count(names) > 1 }`,
		paths: []string{"input.object.spec.containers[_]"},
	}, {
		name:  "variable key",
		body:  `violation contains "x" if { some k; input.object.metadata.labels[k] == "x" }`,
		paths: []string{"input.object.metadata.labels[_]"},
	}, {
		name:  "rule whose value is input is followed",
		body:  "spec := s if { s := input.pod.spec; is_object(s) } else := {}\nviolation contains \"x\" if spec.hostNetwork",
		paths: []string{"input.pod.spec.hostNetwork"},
	}, {
		name:  "library function body is followed",
		body:  `violation contains "x" if data.lib.t.team_missing`,
		lib:   "package lib.t\nteam_missing if not input.object.metadata.labels.team",
		paths: []string{"input.object.metadata.labels.team"},
	}, {
		name:  "library function argument is followed into its body",
		body:  `violation contains "x" if data.lib.t.bad(input.object.spec)`,
		lib:   "package lib.t\nbad(s) if s.x\nbad(_) if input.kind.kind == \"Pod\"",
		paths: []string{"input.kind.kind", "input.object.spec.x"},
	}, {
		name:  "object.get with a constant path",
		body:  `violation contains "x" if object.get(input, ["object", "metadata", "name"], "") == "a"`,
		paths: []string{"input.object.metadata.name"},
	}, {
		name:  "object.get with a variable in the path",
		body:  `violation contains "x" if { some k in ["a", "b"]; object.get(input.object, ["spec", k], 0) > 1 }`,
		paths: []string{"input.object.spec[_]"},
	}, {
		name:        "object.get with a computed path",
		body:        `violation contains "x" if { p := split("spec.x", "."); object.get(input, p, 0) > 1 }`,
		paths:       []string{"input"},
		uncacheable: whole,
	}, {
		name:        "input passed whole",
		body:        `violation contains "x" if json.marshal(input) != ""`,
		paths:       []string{"input"},
		uncacheable: whole,
	}, {
		name:        "walk",
		body:        `violation contains "x" if { walk(input, [p, v]); v == "secret" }`,
		paths:       []string{"input"},
		uncacheable: whole,
	}, {
		name:        "input bound to a variable and iterated",
		body:        `violation contains k if { i := input; some k, _ in i }`,
		paths:       []string{"input[_] (type)"},
		uncacheable: "",
	}, {
		name:        "with input",
		body:        "violation contains \"x\" if data.lib.t.team_missing with input as {\"object\": {}}",
		lib:         "package lib.t\nteam_missing if not input.object.metadata.labels.team",
		paths:       []string{"input"},
		uncacheable: whole,
	}, {
		name:  "dynamic ref into data follows every rule below",
		body:  `violation contains "x" if { some k; data.lib.t[k] == true }`,
		lib:   "package lib.t\na := x if { x := input.object.a }\nb if input.object.b",
		paths: []string{"input.object.a", "input.object.b"},
	}, {
		name:        "time",
		body:        `violation contains "x" if time.now_ns() > 0`,
		uncacheable: "calls time.now_ns, which is not deterministic",
	}, {
		name:        "http.send",
		body:        `violation contains "x" if http.send({"method": "GET", "url": "http://127.0.0.1:1"}).status_code == 200`,
		uncacheable: "calls http.send, which is not deterministic",
	}, {
		name:        "random",
		body:        `violation contains "x" if rand.intn("k", 10) == 1`,
		uncacheable: "calls rand.intn, which is not deterministic",
	}, {
		name:        "uuid",
		body:        `violation contains "x" if uuid.rfc4122("k") == ""`,
		uncacheable: "calls uuid.rfc4122, which is not deterministic",
	}, {
		name:        "runtime",
		body:        `violation contains "x" if opa.runtime().env.X == "1"`,
		uncacheable: "calls opa.runtime, which is not deterministic",
	}, {
		name:        "jwt verified against the clock",
		body:        `violation contains "x" if { [ok, _, _] := io.jwt.decode_verify(input.object.data.token, {"secret": "s"}); not ok }`,
		paths:       []string{"input.object.data.token"},
		uncacheable: "calls io.jwt.decode_verify, which is not deterministic",
	}, {
		name:  "the engine's own builtins are pure",
		body:  `violation contains "x" if tollgate.parse_image(input.object.spec.image).tag == "latest"`,
		paths: []string{"input.object.spec.image"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"p.rego": "package t.p\n" + tc.body + "\n"}
			if tc.lib != "" {
				files["lib.rego"] = tc.lib + "\n"
			}
			e := newEngine(t, files)
			got := e.Reads()["t.p"]
			if diff := cmp.Diff(policies.PolicyReads{Paths: tc.paths, Uncacheable: tc.uncacheable}, got); diff != "" {
				t.Errorf("reads (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReadsCustomBuiltin: a builtin the engine does not know may read
// anything (a cluster, a registry), so a policy calling it is never cached.
func TestReadsCustomBuiltin(t *testing.T) {
	b := policies.StandardBuiltins()[1]
	b.Name = "cluster.lookup"
	e := newEngine(t, map[string]string{"p.rego": "package t.p\nviolation contains \"x\" if cluster.lookup(input.object.metadata.name) > 0\n"},
		func(o *policies.Options) { o.Builtins = []policies.Builtin{b} })
	got := e.Reads()["t.p"].Uncacheable
	if want := "calls cluster.lookup, which may read state outside the input"; got != want {
		t.Errorf("uncacheable = %q, want %q", got, want)
	}
}

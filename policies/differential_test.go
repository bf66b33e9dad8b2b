package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// libraryObjects are the objects of every library fixture, and the
// Namespaces the fixture suites give them.
func libraryObjects(t testing.TB) (objects, namespaces []map[string]any) {
	t.Helper()
	var files []string
	err := filepath.WalkDir("library", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "fuzz" {
			return filepath.SkipDir
		}
		// suite.yaml and scans.yaml (a suite's image scans) hold no objects.
		if !d.IsDir() && strings.Contains(p, "/testdata/") && strings.HasSuffix(p, ".yaml") && d.Name() != "suite.yaml" && d.Name() != "scans.yaml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.Load(files, nil, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		switch d.Kind() {
		case "":
		case "Namespace":
			namespaces = append(namespaces, d.Object)
			objects = append(objects, d.Object)
		default:
			objects = append(objects, d.Object)
		}
	}
	if len(objects) < 100 {
		t.Fatalf("found %d fixture objects; the walk is missing some", len(objects))
	}
	return objects, namespaces
}

// deepCopy copies a JSON-shaped object, numbers as admission decodes them.
func deepCopy(t testing.TB, obj map[string]any) map[string]any {
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	out, err := policies.DecodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// podSpecOf finds the pod spec of a Pod or a pod controller's template.
func podSpecOf(obj map[string]any) map[string]any {
	for _, path := range [][]string{{"spec", "jobTemplate", "spec", "template", "spec"}, {"spec", "template", "spec"}, {"spec"}} {
		cur := any(obj)
		for _, k := range path {
			m, _ := cur.(map[string]any)
			cur = m[k]
		}
		if m, ok := cur.(map[string]any); ok {
			if _, ok := m["containers"]; ok {
				return m
			}
		}
	}
	return nil
}

func child(m map[string]any, key string) map[string]any {
	c, ok := m[key].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[key] = c
	}
	return c
}

// setTokenVolume gives a pod spec the service-account token volume the API
// server gives every Pod, named name and mounted in every container, or
// renames the one it has: a change the library's container policies do not
// read, which a verdict cached for the spec as it was must serve.
func setTokenVolume(spec map[string]any, name string) {
	const prefix = "kube-api-access-"
	vols, _ := spec["volumes"].([]any)
	found := false
	for _, v := range vols {
		if vm, ok := v.(map[string]any); ok {
			if n, _ := vm["name"].(string); strings.HasPrefix(n, prefix) {
				vm["name"], found = name, true
			}
		}
	}
	if !found {
		spec["volumes"] = append(vols, map[string]any{"name": name, "projected": map[string]any{
			"sources": []any{map[string]any{"serviceAccountToken": map[string]any{"path": "token", "expirationSeconds": json.Number("3607")}}},
		}})
	}
	for _, field := range []string{"containers", "initContainers"} {
		cs, _ := spec[field].([]any)
		for _, c := range cs {
			cm, ok := c.(map[string]any)
			if !ok {
				continue
			}
			mounts, _ := cm["volumeMounts"].([]any)
			renamed := false
			for _, m := range mounts {
				if mm, ok := m.(map[string]any); ok {
					if n, _ := mm["name"].(string); strings.HasPrefix(n, prefix) {
						mm["name"], renamed = name, true
					}
				}
			}
			if !renamed {
				cm["volumeMounts"] = append(mounts, map[string]any{"name": name, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true})
			}
		}
	}
}

// renameContainer renames a pod spec's first container: a change the
// library's container policies read (their messages name the container),
// which no verdict cached for the spec as it was may serve.
func renameContainer(spec map[string]any, name string) {
	cs, _ := spec["containers"].([]any)
	if len(cs) == 0 {
		return
	}
	if c, ok := cs[0].(map[string]any); ok {
		c["name"] = name
	}
}

// mutations change an object where the library's policies look (and
// where they do not): containers, security contexts, images, names,
// labels, resources.
var mutations = []func(r *rand.Rand, obj map[string]any){
	func(r *rand.Rand, obj map[string]any) { // add a container
		spec := podSpecOf(obj)
		cs, _ := spec["containers"].([]any)
		if spec == nil || len(cs) == 0 {
			return
		}
		c, _ := cs[0].(map[string]any)
		n := map[string]any{}
		for k, v := range c {
			n[k] = v
		}
		n["name"] = fmt.Sprintf("extra-%d", r.IntN(100))
		spec["containers"] = append(cs, n)
	},
	func(_ *rand.Rand, obj map[string]any) { // remove a container
		spec := podSpecOf(obj)
		if cs, _ := spec["containers"].([]any); len(cs) > 1 {
			spec["containers"] = cs[:len(cs)-1]
		}
	},
	func(r *rand.Rand, obj map[string]any) { // flip a container's securityContext
		spec := podSpecOf(obj)
		cs, _ := spec["containers"].([]any)
		if len(cs) == 0 {
			return
		}
		c, ok := cs[r.IntN(len(cs))].(map[string]any)
		if !ok {
			return
		}
		sc := child(c, "securityContext")
		switch r.IntN(8) {
		case 0:
			sc["privileged"] = r.IntN(2) == 0
		case 1:
			sc["allowPrivilegeEscalation"] = r.IntN(2) == 0
		case 2:
			sc["runAsNonRoot"] = r.IntN(2) == 0
		case 3:
			child(sc, "capabilities")["drop"] = []any{}
		case 4:
			child(sc, "capabilities")["add"] = []any{"NET_ADMIN", "NET_BIND_SERVICE"}
		case 5:
			child(sc, "seccompProfile")["type"] = []string{"Unconfined", "RuntimeDefault", "Localhost"}[r.IntN(3)]
		case 6:
			sc["runAsUser"] = json.Number("0")
		default:
			delete(c, "securityContext")
		}
	},
	func(r *rand.Rand, obj map[string]any) { // flip the pod's securityContext and host fields
		spec := podSpecOf(obj)
		if spec == nil {
			return
		}
		switch r.IntN(5) {
		case 0:
			spec["hostNetwork"] = true
		case 1:
			spec["hostPID"] = r.IntN(2) == 0
		case 2:
			delete(child(spec, "securityContext"), "runAsNonRoot")
		case 3:
			spec["volumes"] = []any{map[string]any{"name": "h", "hostPath": map[string]any{"path": "/"}}}
		default:
			child(spec, "securityContext")["sysctls"] = []any{map[string]any{"name": "kernel.shm_rmid_forced", "value": "1"}, map[string]any{"name": "net.core.somaxconn", "value": "1"}}
		}
	},
	func(r *rand.Rand, obj map[string]any) { // change an image
		spec := podSpecOf(obj)
		cs, _ := spec["containers"].([]any)
		if len(cs) == 0 {
			return
		}
		if c, ok := cs[r.IntN(len(cs))].(map[string]any); ok {
			c["image"] = []string{"nginx:latest", "docker.io/library/nginx", "registry.corp.example/shop/app:1.0", "ghcr.io/x/y@sha256:" + fmt.Sprintf("%064d", 7)}[r.IntN(4)]
		}
	},
	func(r *rand.Rand, obj map[string]any) { // rename
		child(obj, "metadata")["name"] = []string{"Bad_Name", "ok-name", "checkout-7d9c5b8f6d-x2x7k", ""}[r.IntN(4)]
	},
	func(r *rand.Rand, obj map[string]any) { // relabel
		labels := child(child(obj, "metadata"), "labels")
		switch r.IntN(4) {
		case 0:
			delete(labels, "team")
		case 1:
			labels["team"] = ""
		case 2:
			labels["cost-center"] = "CC-9"
		default:
			labels["owner"] = "Not Valid!"
		}
	},
	func(r *rand.Rand, obj map[string]any) { // add or rename the token volume
		if spec := podSpecOf(obj); spec != nil {
			setTokenVolume(spec, fmt.Sprintf("kube-api-access-%05d", r.IntN(100000)))
		}
	},
	func(r *rand.Rand, obj map[string]any) { // rename a container's volume mounts
		spec := podSpecOf(obj)
		cs, _ := spec["containers"].([]any)
		if len(cs) == 0 {
			return
		}
		c, _ := cs[r.IntN(len(cs))].(map[string]any)
		mounts, _ := c["volumeMounts"].([]any)
		for _, m := range mounts {
			if mm, ok := m.(map[string]any); ok {
				mm["name"] = fmt.Sprintf("mount-%d", r.IntN(100))
			}
		}
	},
	func(r *rand.Rand, obj map[string]any) { // rename a container
		if spec := podSpecOf(obj); spec != nil {
			renameContainer(spec, fmt.Sprintf("renamed-%d", r.IntN(100)))
		}
	},
	func(r *rand.Rand, obj map[string]any) { // change resources
		spec := podSpecOf(obj)
		cs, _ := spec["containers"].([]any)
		if len(cs) == 0 {
			return
		}
		if c, ok := cs[r.IntN(len(cs))].(map[string]any); ok {
			if r.IntN(2) == 0 {
				delete(c, "resources")
			} else {
				c["resources"] = map[string]any{"requests": map[string]any{"cpu": "64", "memory": "1Ti"}, "limits": map[string]any{"cpu": "64"}}
			}
		}
	},
}

// namespaceVariants are the Namespaces an object is judged in: none, the
// suites' own, and relabelled ones (team, owner, a Pod Security version).
func namespaceVariants(t testing.TB, suites []map[string]any) []map[string]any {
	out := []map[string]any{nil, decode(t, benchNamespace)}
	out = append(out, suites...)
	relabel := deepCopy(t, decode(t, benchNamespace))
	child(child(relabel, "metadata"), "labels")["pod-security.kubernetes.io/enforce-version"] = "v1.22"
	out = append(out, relabel)
	bare := deepCopy(t, decode(t, benchNamespace))
	delete(child(bare, "metadata"), "labels")
	return append(out, bare)
}

// corpus is every library fixture as it stands and mutated, each in one of
// several Namespaces, some as UPDATEs of the fixture.
func corpus(t testing.TB, perFixture int) []*policies.Input {
	objects, suiteNamespaces := libraryObjects(t)
	namespaces := namespaceVariants(t, suiteNamespaces)
	r := rand.New(rand.NewPCG(17, 3))
	var out []*policies.Input
	for _, obj := range objects {
		for i := 0; i <= perFixture; i++ {
			o := deepCopy(t, obj)
			for range i % 4 {
				mutations[r.IntN(len(mutations))](r, o)
			}
			in := policies.ObjectInput(policies.SourceAdmission, o, namespaces[r.IntN(len(namespaces))])
			if i%3 == 2 {
				in.Operation, in.OldObject = "UPDATE", deepCopy(t, obj)
			}
			out = append(out, in)
		}
		if podSpecOf(obj) == nil {
			continue
		}
		// Twins of the fixture judged one after the other, in one
		// Namespace: the second differs from the first only in its
		// token volume's name, which the container policies' keys
		// leave out, so it is served their cached verdicts; the third
		// only in a container's name (and its own, which the naming
		// policies judge), which their keys keep; the last two only in
		// a sysctl's name, which the sysctls policy's key keeps.
		ns := namespaces[r.IntN(len(namespaces))]
		sysctl := func(name string) func(spec map[string]any) {
			return func(spec map[string]any) {
				child(spec, "securityContext")["sysctls"] = []any{map[string]any{"name": name, "value": "1"}}
			}
		}
		for i, change := range []func(spec map[string]any){
			func(spec map[string]any) { setTokenVolume(spec, "kube-api-access-a1b2c") },
			func(spec map[string]any) { setTokenVolume(spec, "kube-api-access-z9y8x") },
			func(spec map[string]any) {
				setTokenVolume(spec, "kube-api-access-z9y8x")
				renameContainer(spec, "twin")
			},
			sysctl("kernel.shm_rmid_forced"),
			sysctl("net.core.somaxconn"),
		} {
			o := deepCopy(t, obj)
			change(podSpecOf(o))
			if i == 2 {
				child(o, "metadata")["name"] = "Twin_Of_" + fmt.Sprint(child(o, "metadata")["name"])
			}
			in := policies.ObjectInput(policies.SourceAdmission, o, ns)
			if i == 2 {
				in.Operation, in.OldObject = "UPDATE", deepCopy(t, obj)
			}
			out = append(out, in)
		}
	}
	return out
}

// sameDecision reports how two decisions on one input differ, "" if not.
func sameDecision(want, got *policies.Decision) string {
	errs := func(d *policies.Decision) []string {
		var out []string
		for _, e := range d.Errors {
			out = append(out, e.Error())
		}
		return out
	}
	if diff := cmp.Diff(want.Findings, got.Findings); diff != "" {
		return "findings (-plain +pruned/cached):\n" + diff
	}
	if diff := cmp.Diff(errs(want), errs(got)); diff != "" {
		return "errors (-plain +pruned/cached):\n" + diff
	}
	if want.Applied != got.Applied {
		return fmt.Sprintf("applied %d policies, plain %d", got.Applied, want.Applied)
	}
	return ""
}

// areaEngine is an engine of the library's helpers and the policies of
// one area (pss/baseline, images, ...), or all of them for "".
func areaEngine(t testing.TB, area string, opts ...func(*policies.Options)) *policies.Engine {
	t.Helper()
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	var keep []policies.Module
	for _, m := range mods {
		if strings.HasPrefix(m.Name, "library/lib/") || strings.HasPrefix(m.Name, "library/"+area) {
			keep = append(keep, m)
		}
	}
	o := policies.Options{Modules: keep}
	for _, f := range opts {
		f(&o)
	}
	e, err := policies.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPrunedCachedAgree: every library fixture and a generated corpus of
// their mutations, judged by an engine that prunes its input and caches
// verdicts (twice, the second time from the cache) and by one that does
// neither, give the same decisions, to every field. The whole library is
// judged together, and each area of it alone, where the input is pruned
// much further (the union of what fewer policies read).
func TestPrunedCachedAgree(t *testing.T) {
	ctx := context.Background()
	inputs := corpus(t, 3)
	for _, area := range []string{"", "pss/baseline/", "pss/restricted/", "images/", "naming/", "ownership/", "resources/", "rbac/", "cluster/"} {
		t.Run("library/"+area, func(t *testing.T) {
			plain := areaEngine(t, area, withFullInput)
			fast := areaEngine(t, area, withCache)
			var findings, applied int
			want := make([]*policies.Decision, len(inputs))
			for pass := range 2 {
				for i, in := range inputs {
					if pass == 0 {
						want[i] = plain.Evaluate(ctx, in)
						findings += len(want[i].Findings)
						if want[i].Applied > 0 {
							applied++
						}
					}
					if diff := sameDecision(want[i], fast.Evaluate(ctx, in)); diff != "" {
						raw, _ := json.Marshal(in.Object)
						t.Fatalf("pass %d, input %d (%s), namespace %v: %s", pass+1, i, raw, in.Namespace, diff)
					}
				}
			}
			st := fast.CacheStats()
			t.Logf("%d inputs (%d the area's policies apply to), %d findings; cache: %+v", len(inputs), applied, findings, st)
			// Counted on the inputs the area judges: the corpus holds
			// every area's fixtures, most of them of kinds another
			// area's policies judge.
			if findings < applied/20 {
				t.Errorf("only %d findings on the %d inputs the area's policies apply to: the corpus does not exercise the policies", findings, applied)
			}
			if st.Hits < st.Misses {
				t.Errorf("second pass should be served from the cache: %+v", st)
			}
		})
	}
}

// FuzzPrunedCachedAgree judges any object, in a Namespace with any team
// and Pod Security version labels, with and without input pruning and the
// verdict cache (the cached engine twice): the decisions never differ.
func FuzzPrunedCachedAgree(f *testing.F) {
	objects, _ := libraryObjects(f)
	for i, obj := range objects {
		raw, err := json.Marshal(obj)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, []string{"payments", "", "platform"}[i%3], []string{"", "v1.22", "latest", "v1.0"}[i%4])
	}
	type pair struct{ plain, fast *policies.Engine }
	var pairs []pair
	for _, area := range []string{"", "pss/restricted/"} {
		pairs = append(pairs, pair{areaEngine(f, area, withFullInput), areaEngine(f, area, withCache)})
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw []byte, team, version string) {
		obj, err := policies.DecodeJSON(raw)
		if err != nil || obj == nil {
			return
		}
		ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{
			"name": "shop", "labels": map[string]any{"team": team, "pod-security.kubernetes.io/enforce-version": version},
		}}
		in := policies.ObjectInput(policies.SourceAdmission, obj, ns)
		for _, p := range pairs {
			want := p.plain.Evaluate(ctx, in)
			for pass := range 2 {
				if diff := sameDecision(want, p.fast.Evaluate(ctx, in)); diff != "" {
					t.Fatalf("pass %d: %s", pass+1, diff)
				}
			}
		}
	})
}

// TestCacheServesTokenVolumeTwins: a Pod that differs from one already
// judged only in its service-account token volume's name (as every Pod the
// API server admits does) is served the cached verdict of every policy but
// those that read volume names; one that differs in a container's name is
// judged afresh by every policy that names containers. Both get the
// decisions plain evaluation gives.
func TestCacheServesTokenVolumeTwins(t *testing.T) {
	ctx := context.Background()
	plain := libraryEngine(t, withFullInput)
	fast := libraryEngine(t, withCache)
	base := apiServerPod(t)
	judge := func(change func(spec map[string]any)) uint64 {
		in := *base
		in.Object = deepCopy(t, base.Object)
		change(podSpecOf(in.Object))
		before := fast.CacheStats().Misses
		if diff := sameDecision(plain.Evaluate(ctx, &in), fast.Evaluate(ctx, &in)); diff != "" {
			t.Fatal(diff)
		}
		return fast.CacheStats().Misses - before
	}
	// reading counts the policies that read path: it, below it, or a
	// part of the input above it whole.
	reading := func(path string) (n uint64) {
		for _, r := range fast.Reads() {
			if slices.ContainsFunc(r.Paths, func(p string) bool {
				return strings.HasPrefix(p, path) || !strings.HasSuffix(p, " (type)") && strings.HasPrefix(path, p)
			}) {
				n++
			}
		}
		return n
	}
	volumeNames, containerNames := reading("input.pod.spec.volumes[_].name"), reading("input.pod.spec.containers[_].name")
	if containerNames < 10 {
		t.Fatalf("only %d policies read container names: the library's container policies are not analysed as expected", containerNames)
	}
	judge(func(map[string]any) {})
	if m := judge(func(spec map[string]any) { setTokenVolume(spec, "kube-api-access-q7w2e") }); m != volumeNames {
		t.Errorf("a new token volume name missed the cache for %d policies, want %d (those reading volume names or the spec whole)", m, volumeNames)
	}
	if m := judge(func(spec map[string]any) { renameContainer(spec, "renamed") }); m < containerNames {
		t.Errorf("a renamed container missed the cache for %d policies, want at least %d (those naming containers)", m, containerNames)
	}
}

// TestPrunedCachedAgreeShapes: policies whose reads the analysis follows
// through helpers, and ones where following would be unsound (set elements
// counted, compared, looked up, copied then compared), judged over objects
// that differ only where such a policy looks at whole values, with and
// without pruning and the cache: the decisions never differ.
func TestPrunedCachedAgreeShapes(t *testing.T) {
	lib := "package lib.t\n" +
		"ws contains {\"c\": c} if some c in input.object.spec.containers\n" +
		"cs contains {\"c\": c, \"i\": i} if some i, c in input.object.spec.containers\n" +
		"sc(w) := x if { x := w.c.securityContext; is_object(x) } else := {}\n" +
		"name(w) := n if { n := w.c.name; is_string(n) } else := \"\"\n"
	bodies := []string{
		`violation contains "many" if count([1 | some w in data.lib.t.ws; w.c.image]) > 1`,
		`violation contains "same" if { some w in data.lib.t.ws; w.c == {"name": "a", "image": "x"} }`,
		`violation contains "member" if { k := {"c": {"name": "a", "image": "x"}}; w := data.lib.t.ws[k]; w.c.image }`,
		`violation contains "counted" if count(data.lib.t.ws) > 1`,
		`violation contains data.lib.t.name(w) if { some w in data.lib.t.cs; data.lib.t.sc(w).privileged }`,
		`violation contains "copied" if { y := input.object.spec.containers[0]; x := y; x == {"name": "a", "image": "x"} }`,
	}
	files := map[string]string{"lib.rego": lib}
	for i, b := range bodies {
		files[fmt.Sprintf("p%d.rego", i)] = fmt.Sprintf("package t.p%d\n%s\n", i, b)
	}
	plain := newEngine(t, files, withFullInput)
	fast := newEngine(t, files, withCache)
	containers := []string{
		`[{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]`,
		`[{"name": "a", "image": "x"}, {"name": "a", "image": "x"}]`,
		`[{"name": "a", "image": "x"}]`,
		`[{"name": "a", "image": "x", "ports": [80]}]`,
		`[{"name": "a", "image": "x", "securityContext": {"privileged": true}}]`,
		`[{"name": "b", "image": "x", "securityContext": {"privileged": true}}]`,
		`[{"name": "b", "image": "x", "securityContext": {"privileged": true}, "volumeMounts": [{"name": "kube-api-access-1"}]}]`,
	}
	ctx := context.Background()
	var findings int
	for pass := range 2 {
		for _, cs := range containers {
			obj := decode(t, `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": `+cs+`}}`)
			in := policies.ObjectInput(policies.SourceAdmission, obj, nil)
			want := plain.Evaluate(ctx, in)
			findings += len(want.Findings)
			if diff := sameDecision(want, fast.Evaluate(ctx, in)); diff != "" {
				t.Errorf("pass %d, containers %s: %s", pass+1, cs, diff)
			}
		}
	}
	if st := fast.CacheStats(); findings < 10 || st.Hits == 0 {
		t.Errorf("%d findings, cache %+v: the objects do not exercise the policies", findings, st)
	}
}

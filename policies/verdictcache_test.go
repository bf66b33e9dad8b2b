package policies_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
)

const tierPolicy = `package t.tier

# METADATA
# title: Locked namespaces run no privileged containers
# custom:
#   id: tier
#   scope: pod
violation contains {"msg": sprintf("%s is privileged in a locked namespace", [c.name]), "path": ["spec", "containers", i, "securityContext", "privileged"]} if {
	input.namespace.metadata.labels.tier == "locked"
	some i, c in input.pod.spec.containers
	c.securityContext.privileged == true
}
`

func tierPod(privileged bool, name string) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "shop"},
		"spec": map[string]any{"containers": []any{map[string]any{
			"name": "app", "image": "nginx:1.27", "securityContext": map[string]any{"privileged": privileged},
		}}},
	}
}

func tierNamespace(tier string) map[string]any {
	return map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": "shop", "labels": map[string]any{"tier": tier}}}
}

func messages(d *policies.Decision) []string {
	var out []string
	for _, f := range d.Findings {
		out = append(out, f.Message)
	}
	for _, e := range d.Errors {
		out = append(out, "error: "+e.Error())
	}
	return out
}

// TestVerdictCacheInvalidation: each thing a cached verdict was computed
// from changes the next verdict on an identical object. Namespace labels
// and the object are in the key; config and policies build a new Engine,
// with a new, empty cache. (Exceptions and image verdicts are applied after
// the engine, in the review, and are never cached here.)
func TestVerdictCacheInvalidation(t *testing.T) {
	ctx := context.Background()
	withCache := func(o *policies.Options) { o.VerdictCache = 1 << 20 }
	e := newEngine(t, map[string]string{"tier.rego": tierPolicy}, withCache)
	judge := func(e *policies.Engine, privileged bool, name, tier string) []string {
		return messages(e.Evaluate(ctx, policies.ObjectInput(policies.SourceAdmission, tierPod(privileged, name), tierNamespace(tier))))
	}
	denied := []string{"app is privileged in a locked namespace"}
	steps := []struct {
		name       string
		privileged bool
		pod, tier  string
		want       []string
		hits       uint64
	}{
		{"first sight", true, "a", "open", nil, 0},
		{"same again, from the cache", true, "a", "open", nil, 1},
		{"a path the policy does not read changes: still from the cache", true, "b", "open", nil, 2},
		{"namespace label changes", true, "b", "locked", denied, 2},
		{"namespace label back", true, "b", "open", nil, 3},
		{"object changes at a read path", false, "b", "locked", nil, 3},
		{"and back", true, "b", "locked", denied, 4},
	}
	for _, s := range steps {
		if got := judge(e, s.privileged, s.pod, s.tier); fmt.Sprint(got) != fmt.Sprint(s.want) {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
		if st := e.CacheStats(); st.Hits != s.hits {
			t.Errorf("%s: %d cache hits, want %d (%+v)", s.name, st.Hits, s.hits, st)
		}
	}

	// A policy change is a new engine: the new policy judges at once.
	changed := newEngine(t, map[string]string{"tier.rego": strings.Replace(tierPolicy, `== "locked"`, `== "open"`, 1)}, withCache)
	if got := judge(changed, true, "b", "open"); fmt.Sprint(got) != fmt.Sprint(denied) {
		t.Errorf("after a policy change: got %q, want %q", got, denied)
	}

	// A config change is a new engine too: a parameter the policy reads
	// from input.config takes effect on the next identical object.
	const registryPolicy = `package t.registry

# METADATA
# title: Images from the allowed registries
# custom:
#   id: registry
#   scope: pod
violation contains "image from a registry that is not allowed" if {
	allowed := input.config.parameters.images.allowedRegistries
	count(allowed) > 0
	some c in input.pod.spec.containers
	not startswith(c.image, allowed[0])
}
`
	pod := policies.ObjectInput(policies.SourceAdmission, tierPod(false, "a"), tierNamespace("open"))
	open := newEngine(t, map[string]string{"r.rego": registryPolicy}, withCache)
	if got := messages(open.Evaluate(ctx, pod)); len(got) != 0 {
		t.Errorf("default config: got %q, want nothing", got)
	}
	cfg, err := policies.ParseConfig([]byte("parameters:\n  images:\n    allowedRegistries: [registry.corp.example]\n"))
	if err != nil {
		t.Fatal(err)
	}
	strict := newEngine(t, map[string]string{"r.rego": registryPolicy}, withCache, func(o *policies.Options) { o.Config = cfg })
	if got := messages(strict.Evaluate(ctx, pod)); len(got) != 1 {
		t.Errorf("after a config change: got %q, want one finding", got)
	}
}

// TestVerdictCacheBounded: unique objects, as an attacker would send them,
// never grow the cache past its budget; the oldest verdicts go.
func TestVerdictCacheBounded(t *testing.T) {
	ctx := context.Background()
	const budget = 64 << 10
	e := newEngine(t, map[string]string{"tier.rego": tierPolicy, "n.rego": namingPolicy},
		func(o *policies.Options) { o.VerdictCache = budget })
	for i := range 3000 {
		e.Evaluate(ctx, policies.ObjectInput(policies.SourceAdmission, tierPod(true, "pod-"+strconv.Itoa(i)), tierNamespace(strconv.Itoa(i))))
	}
	st := e.CacheStats()
	if st.Bytes > budget || st.Evictions == 0 || st.Entries == 0 {
		t.Errorf("cache past its budget of %d bytes or never evicting: %+v", budget, st)
	}
}

// namingPolicy reads the object's name, so every pod has its own key.
const namingPolicy = `package t.naming

violation contains "name too long" if count(input.object.metadata.name) > 40
`

// TestVerdictCacheConcurrent: concurrent evaluations share the cache
// safely (run with -race) and agree with an engine without one.
func TestVerdictCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{"tier.rego": tierPolicy, "n.rego": namingPolicy}
	plain := newEngine(t, files, func(o *policies.Options) { o.FullInput = true })
	cached := newEngine(t, files, func(o *policies.Options) { o.VerdictCache = 16 << 10 })
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				in := policies.ObjectInput(policies.SourceAdmission, tierPod(i%2 == 0, strings.Repeat("p", (i+w)%50)), tierNamespace([]string{"open", "locked"}[i%3%2]))
				if a, b := fmt.Sprint(messages(plain.Evaluate(ctx, in))), fmt.Sprint(messages(cached.Evaluate(ctx, in))); a != b {
					errs <- fmt.Sprintf("worker %d input %d: plain %s, cached %s", w, i, a, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if st := cached.CacheStats(); st.Hits == 0 {
		t.Errorf("no hits: %+v", st)
	}
}

// TestVerdictCacheOptions: a negative budget is a mistake, said plainly;
// 0 turns the cache off.
func TestVerdictCacheOptions(t *testing.T) {
	_, err := policies.New(context.Background(), policies.Options{VerdictCache: -1})
	if err == nil || !strings.Contains(err.Error(), "verdict cache budget -1 is negative") {
		t.Errorf("negative budget: err = %v", err)
	}
	e := newEngine(t, map[string]string{"tier.rego": tierPolicy})
	in := policies.ObjectInput(policies.SourceAdmission, tierPod(true, "a"), tierNamespace("locked"))
	e.Evaluate(context.Background(), in)
	e.Evaluate(context.Background(), in)
	if st := e.CacheStats(); st != (policies.CacheStats{}) {
		t.Errorf("cache off, yet stats %+v", st)
	}
}

package review_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// scanCall is one call of a Source.
type scanCall struct {
	namespace string
	podSpec   map[string]any
	images    []string
}

// scanSource answers from a function and records its calls.
type scanSource struct {
	mu     sync.Mutex
	calls  []scanCall
	answer func(ctx context.Context, images []string) map[string]*vuln.Summary
}

func (s *scanSource) Summaries(ctx context.Context, namespace string, podSpec map[string]any, images []string) map[string]*vuln.Summary {
	s.mu.Lock()
	s.calls = append(s.calls, scanCall{namespace, podSpec, slices.Clone(images)})
	s.mu.Unlock()
	return s.answer(ctx, images)
}

func (s *scanSource) recorded() []scanCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

var _ vuln.Source = (*scanSource)(nil)

// librarySet is the built-in library with its default config.
func librarySet(t *testing.T) *review.Set {
	t.Helper()
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: mods})
	if err != nil {
		t.Fatal(err)
	}
	return review.NewSet(e, nil, 1)
}

func criticalReport(image string) *vuln.Report {
	return &vuln.Report{Image: image, Digest: "sha256:" + strings.Repeat("a", 64), OS: "debian 12.5", Vulnerabilities: []vuln.Vulnerability{
		{ID: "CVE-2024-0001", Package: "openssl", Installed: "3.0.1", Fixed: "3.0.2", Severity: vuln.Critical},
		{ID: "CVE-2024-0002", Package: "zlib", Installed: "1.2.11", Severity: vuln.High},
	}}
}

var production = map[string]any{"metadata": map[string]any{"name": "shop", "labels": map[string]any{"tier": "production"}}}

// findings lists "policy path: message" of the findings of some policies.
func findings(v *review.Verdict, ids ...string) []string {
	var out []string
	for _, f := range v.Findings {
		if slices.Contains(ids, f.Policy) {
			out = append(out, f.Policy+" "+f.Path+": "+f.Message)
		}
	}
	slices.Sort(out)
	return out
}

var scanPolicies = []string{"images-vulnerabilities", "images-unscanned", "images-vulnerability-report"}

// TestReviewFillsImageScans checks the Source is asked once per review
// with the namespace, the pod spec and every distinct image as written
// (init and ephemeral containers included), that policies see the
// summaries, that an image the Source has nothing for is pending, and
// that the caller's input is not changed.
func TestReviewFillsImageScans(t *testing.T) {
	set := librarySet(t)
	src := &scanSource{answer: func(_ context.Context, images []string) map[string]*vuln.Summary {
		return map[string]*vuln.Summary{"registry.example/app:1": vuln.Summarize(criticalReport("registry.example/app:1"), false)}
	}}
	r := review.New(review.Options{Scans: src})
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "shop"},
		"spec": map[string]any{
			"imagePullSecrets":    []any{map[string]any{"name": "pull"}},
			"initContainers":      []any{map[string]any{"name": "setup", "image": "registry.example/tools:2"}},
			"containers":          []any{map[string]any{"name": "app", "image": "registry.example/app:1"}, map[string]any{"name": "side", "image": "registry.example/app:1"}},
			"ephemeralContainers": []any{map[string]any{"name": "debug", "image": "registry.example/debug:3"}},
		}}
	in := policies.ObjectInput(policies.SourceAudit, obj, production)
	before := *in
	objBefore := deepCopy(t, obj)

	v := r.Review(context.Background(), set, in)

	calls := src.recorded()
	if len(calls) != 1 {
		t.Fatalf("Summaries called %d times, want 1", len(calls))
	}
	if calls[0].namespace != "shop" {
		t.Errorf("namespace %q, want shop", calls[0].namespace)
	}
	if diff := cmp.Diff([]string{"registry.example/tools:2", "registry.example/app:1", "registry.example/debug:3"}, calls[0].images); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if _, ok := calls[0].podSpec["imagePullSecrets"]; !ok {
		t.Errorf("the pod spec given has no imagePullSecrets: %v", calls[0].podSpec)
	}
	want := []string{
		`images-unscanned spec.ephemeralContainers[0].image: ephemeral container "debug" image "registry.example/debug:3" has no scan result yet; it is queued for scanning`,
		`images-unscanned spec.initContainers[0].image: init container "setup" image "registry.example/tools:2" has no scan result yet; it is queued for scanning`,
		`images-vulnerabilities spec.containers[0].image: container "app" image "registry.example/app:1" has 1 fixable CRITICAL vulnerability: CVE-2024-0001 in openssl 3.0.1 (fixed in 3.0.2)`,
		`images-vulnerabilities spec.containers[1].image: container "side" image "registry.example/app:1" has 1 fixable CRITICAL vulnerability: CVE-2024-0001 in openssl 3.0.1 (fixed in 3.0.2)`,
		`images-vulnerability-report spec.containers[0].image: image "registry.example/app:1" (sha256:` + strings.Repeat("a", 64) + `): 2 vulnerabilities (1 CRITICAL, 1 HIGH, 0 MEDIUM, 0 LOW, 0 UNKNOWN; 1 fixable): CVE-2024-0001 in openssl 3.0.1 (fixed in 3.0.2), CVE-2024-0002 in zlib 1.2.11 (no fix yet)`,
	}
	if diff := cmp.Diff(want, findings(v, scanPolicies...)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	for _, l := range v.Denials {
		if strings.HasPrefix(l, "[images-") {
			t.Errorf("denial %q: the scan policies warn and audit by default", l)
		}
	}
	if got := slices.Sorted(maps.Keys(v.ImageScans)); !slices.Equal(got, []string{"registry.example/app:1", "registry.example/debug:3", "registry.example/tools:2"}) {
		t.Errorf("verdict's scans for %v", got)
	}
	if s := v.ImageScans["registry.example/tools:2"]; s == nil || s.Status != vuln.StatusPending {
		t.Errorf("an image the Source has nothing for: %+v, want pending", s)
	}
	if in.ImageScans != nil || in.Object["metadata"] == nil || !cmp.Equal(before, *in, cmp.Comparer(func(a, b map[string]any) bool { return fmt.Sprint(a) == fmt.Sprint(b) })) {
		t.Error("Review changed the caller's input")
	}
	if diff := cmp.Diff(objBefore, obj); diff != "" {
		t.Errorf("Review changed the caller's object (-before +after):\n%s", diff)
	}
}

func deepCopy(t *testing.T, obj map[string]any) map[string]any {
	t.Helper()
	out, err := review.Apply(obj, &policies.Mutation{Patch: []policies.PatchOperation{{Op: "test", Path: "/kind", Value: obj["kind"]}}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReviewScansOnlyWhereConfigured checks that without a Source
// input.imageScans stays unset (and a caller's own stays as given), and
// that an input without images gets none and costs no call.
func TestReviewScansOnlyWhereConfigured(t *testing.T) {
	const presence = `# METADATA
# custom:
#   id: sees-scans
#   action: warn
#   scope: object
package test.seesscans

violation contains sprintf("imageScans has %d entries", [count(input.imageScans)]) if {
	input.object.metadata.name
	input.imageScans
}
`
	e, err := policies.New(context.Background(), policies.Options{Modules: []policies.Module{{Name: "p.rego", Text: presence}}})
	if err != nil {
		t.Fatal(err)
	}
	set := review.NewSet(e, nil, 1)
	src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary { return nil }}
	configMap := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "shop"}}
	job := map[string]any{"apiVersion": "batch/v1", "kind": "Job", "metadata": map[string]any{"name": "j", "namespace": "shop"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "busybox:1"}}}}}}
	given := policies.ObjectInput(policies.SourceCheck, job, nil)
	given.ImageScans = map[string]any{"busybox:1": map[string]any{"status": "scanned"}, "other:1": map[string]any{"status": "scanned"}}
	for _, tc := range []struct {
		name  string
		scans vuln.Source
		in    *policies.Input
		want  []string
		calls int
	}{
		{"no source", nil, policies.ObjectInput(policies.SourceAudit, job, nil), nil, 0},
		{"no source keeps the caller's scans", nil, given, []string{"imageScans has 2 entries"}, 0},
		{"source, no images", src, policies.ObjectInput(policies.SourceAudit, configMap, nil), nil, 0},
		{"source, a job template", src, policies.ObjectInput(policies.SourceAudit, job, nil), []string{"imageScans has 1 entries"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(src.recorded())
			v := review.New(review.Options{Scans: tc.scans}).Review(context.Background(), set, tc.in)
			var got []string
			for _, f := range v.Findings {
				got = append(got, f.Message)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if n := len(src.recorded()) - before; n != tc.calls {
				t.Errorf("Summaries called %d times, want %d", n, tc.calls)
			}
		})
	}
}

// TestReviewScansAdversarial feeds the review core odd image names and a
// Source that misbehaves: huge summaries, unknown statuses, a panic, no
// answer. Each review returns, bounded, with every image judged (never
// silently passed) and the process intact.
func TestReviewScansAdversarial(t *testing.T) {
	set := librarySet(t)
	podWith := func(images ...string) *policies.Input {
		var cs []any
		for i, img := range images {
			cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": img})
		}
		obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "shop"},
			"spec": map[string]any{"containers": cs}}
		return policies.ObjectInput(policies.SourceAdmission, obj, production)
	}

	t.Run("odd image names are keys as written", func(t *testing.T) {
		odd := []string{strings.Repeat("r", 10000) + ":1", "レジストリ.example/画像:版", "metadata", "__proto__", `a"b\c:{}`}
		src := &scanSource{answer: func(_ context.Context, images []string) map[string]*vuln.Summary {
			out := map[string]*vuln.Summary{}
			for _, img := range images {
				out[img] = vuln.Summarize(criticalReport(img), false)
			}
			return out
		}}
		v := review.New(review.Options{Scans: src}).Review(context.Background(), set, podWith(odd...))
		if len(v.Errors) > 0 {
			t.Fatalf("errors: %v", v.Errors)
		}
		var flagged []string
		for _, f := range v.Findings {
			if f.Policy == "images-vulnerabilities" {
				flagged = append(flagged, f.Path)
			}
		}
		if len(flagged) != len(odd) {
			t.Errorf("images-vulnerabilities flagged %v, want each of the %d images", flagged, len(odd))
		}
		if got := slices.Sorted(maps.Keys(v.ImageScans)); !slices.Equal(got, slices.Sorted(slices.Values(odd))) {
			t.Errorf("scans keyed by %q", got)
		}
	})

	t.Run("huge summaries are bounded", func(t *testing.T) {
		huge := &vuln.Summary{Status: vuln.StatusScanned, Counts: map[string]int{vuln.Critical: 100000}, Fixable: map[string]int{vuln.Critical: 100000},
			Error: strings.Repeat("é", 5000)}
		for i := range 100000 {
			huge.Vulns = append(huge.Vulns, vuln.Vulnerability{ID: fmt.Sprintf("CVE-2024-%06d", i), Package: "openssl", Installed: "1", Fixed: "2", Severity: vuln.Critical})
		}
		src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary {
			return map[string]*vuln.Summary{"app:1": huge}
		}}
		v := review.New(review.Options{Scans: src}).Review(context.Background(), set, podWith("app:1"))
		s := v.ImageScans["app:1"]
		if len(s.Vulns) != vuln.MaxListed || !s.Truncated {
			t.Errorf("listed %d (truncated %v), want %d and truncated", len(s.Vulns), s.Truncated, vuln.MaxListed)
		}
		if len(s.Error) > 1024 || !strings.HasSuffix(s.Error, "é...") {
			t.Errorf("error of %d bytes ending %q: want at most 1024, cut on a character", len(s.Error), s.Error[len(s.Error)-8:])
		}
		if len(huge.Vulns) != 100000 || huge.Truncated {
			t.Error("the Source's own summary was changed")
		}
		got := findings(v, "images-vulnerabilities")
		if len(got) != 1 || !strings.Contains(got[0], "has 100000 fixable CRITICAL vulnerabilities") || !strings.HasSuffix(got[0], "and 195 more") || len(got[0]) > 1000 {
			t.Errorf("finding %q: want the full count and five named", got)
		}
	})

	t.Run("an unknown status is a failed scan", func(t *testing.T) {
		src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary {
			return map[string]*vuln.Summary{"app:1": {Status: "clean"}}
		}}
		v := review.New(review.Options{Scans: src}).Review(context.Background(), set, podWith("app:1"))
		want := []string{`images-unscanned spec.containers[0].image: container "c0" image "app:1" could not be scanned: the scan store gave the unknown status "clean"`}
		if diff := cmp.Diff(want, findings(v, scanPolicies...)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	t.Run("a panicking source", func(t *testing.T) {
		src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary { panic("index out of range") }}
		v := review.New(review.Options{Scans: src}).Review(context.Background(), set, podWith("app:1", "db:2"))
		want := []string{
			`images-unscanned spec.containers[0].image: container "c0" image "app:1" could not be scanned: the scan results could not be read: the scan store panicked: index out of range`,
			`images-unscanned spec.containers[1].image: container "c1" image "db:2" could not be scanned: the scan results could not be read: the scan store panicked: index out of range`,
		}
		if diff := cmp.Diff(want, findings(v, scanPolicies...)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
		if len(v.Warnings) != 2 {
			t.Errorf("warnings %v", v.Warnings)
		}
	})

	t.Run("a source that never answers", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary {
			<-release // ignores its context: the review must not wait for it
			return nil
		}}
		for _, tc := range []struct {
			name string
			opts review.Options
			ctx  func() (context.Context, context.CancelFunc)
		}{
			{"request deadline", review.Options{Scans: src, ScansWait: time.Hour}, func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 50*time.Millisecond)
			}},
			{"wait bound", review.Options{Scans: src, ScansWait: 50 * time.Millisecond}, func() (context.Context, context.CancelFunc) {
				return context.WithCancel(context.Background())
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := tc.ctx()
				defer cancel()
				v := review.New(tc.opts).Review(ctx, set, podWith("app:1"))
				s := v.ImageScans["app:1"]
				if s == nil || s.Status != vuln.StatusFailed || !strings.Contains(s.Error, "the scan store did not answer: context deadline exceeded") {
					t.Errorf("summary %+v, want failed: did not answer", s)
				}
			})
		}
	})

	t.Run("a nil answer leaves every image pending", func(t *testing.T) {
		src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary {
			return map[string]*vuln.Summary{"app:1": nil}
		}}
		v := review.New(review.Options{Scans: src}).Review(context.Background(), set, podWith("app:1", "db:2"))
		for _, img := range []string{"app:1", "db:2"} {
			if s := v.ImageScans[img]; s == nil || s.Status != vuln.StatusPending {
				t.Errorf("%s: %+v, want pending", img, s)
			}
		}
	})
}

// TestReviewScansEnforced checks the unscanned rule's action is the
// config's: enforce denies an image without a result, disabled allows it.
func TestReviewScansEnforced(t *testing.T) {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		t.Fatal(err)
	}
	src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary { return nil }}
	obj := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "d", "namespace": "shop"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "app:1"}}}}}}
	for action, wantDenied := range map[string]bool{"enforce": true, "disabled": false, "warn": false} {
		t.Run(action, func(t *testing.T) {
			cfg, err := policies.ParseConfig([]byte("apiVersion: tollgate.dev/v1alpha1\nkind: Config\npolicies:\n  images-unscanned:\n    action: " + action + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			e, err := policies.New(context.Background(), policies.Options{Modules: mods, Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			v := review.New(review.Options{Scans: src}).Review(context.Background(), review.NewSet(e, nil, 1), policies.ObjectInput(policies.SourceAdmission, obj, production))
			denied := slices.ContainsFunc(v.Denials, func(l string) bool { return strings.HasPrefix(l, "[images-unscanned]") })
			if denied != wantDenied {
				t.Errorf("denied %v, want %v: denials %v, warnings %v", denied, wantDenied, v.Denials, v.Warnings)
			}
		})
	}
}

// BenchmarkReviewImageScans measures what filling input.imageScans adds to
// a review of a 4-container Deployment with the whole library: "none"
// without a Source, "scans" with one that answers from memory.
func BenchmarkReviewImageScans(b *testing.B) {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		b.Fatal(err)
	}
	e, err := policies.New(context.Background(), policies.Options{Modules: mods, VerdictCache: policies.DefaultVerdictCache})
	if err != nil {
		b.Fatal(err)
	}
	set := review.NewSet(e, nil, 1)
	var cs []any
	sums := map[string]*vuln.Summary{}
	for i := range 4 {
		img := fmt.Sprintf("registry.example/app%d:1", i)
		cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": img})
		sums[img] = vuln.Summarize(criticalReport(img), false)
	}
	obj := map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "d", "namespace": "shop"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": cs}}}}
	src := &scanSource{answer: func(context.Context, []string) map[string]*vuln.Summary { return sums }}
	for name, opts := range map[string]review.Options{"none": {}, "scans": {Scans: src}} {
		b.Run(name, func(b *testing.B) {
			r := review.New(opts)
			in := policies.ObjectInput(policies.SourceAdmission, obj, production)
			for b.Loop() {
				r.Review(context.Background(), set, in)
			}
		})
	}
}

// TestReviewScansDryRunQueuesNothing: a dry-run request has no side
// effects, so the Source is told not to queue what it misses; a real
// request may.
func TestReviewScansDryRunQueuesNothing(t *testing.T) {
	set := librarySet(t)
	var queueing []bool
	var mu sync.Mutex
	src := &scanSource{answer: func(ctx context.Context, _ []string) map[string]*vuln.Summary {
		mu.Lock()
		queueing = append(queueing, vuln.Queueing(ctx))
		mu.Unlock()
		return nil
	}}
	r := review.New(review.Options{Scans: src})
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": "shop"},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example/app:1"}}}}
	for _, dry := range []bool{true, false} {
		in := policies.ObjectInput(policies.SourceAdmission, obj, production)
		in.Operation, in.DryRun = "CREATE", dry
		r.Review(context.Background(), set, in)
	}
	if want := []bool{false, true}; !slices.Equal(queueing, want) {
		t.Errorf("queueing allowed per request (dry run, real) = %v, want %v", queueing, want)
	}
}

package imagescan_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/imagescan"
)

func newStore(t *testing.T, queue int, reg prometheus.Registerer) *imagescan.Store {
	t.Helper()
	s, err := imagescan.NewStore(imagescan.StoreOptions{Reader: env.cached, Writer: env.client, Queue: queue, MaxAge: 24 * time.Hour, Metrics: imagescan.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "nginx:1.27", want: "index.docker.io/library/nginx:1.27"},
		{in: "docker.io/library/nginx:1.27", want: "index.docker.io/library/nginx:1.27"},
		{in: "nginx", want: "index.docker.io/library/nginx:latest"},
		{in: "registry.corp:5000/team/app@sha256:" + strings.Repeat("a", 64), want: "registry.corp:5000/team/app@sha256:" + strings.Repeat("a", 64)},
		{in: "", err: `image reference "": empty`},
		{in: " nginx", err: "surrounded by spaces"},
		{in: "Nginx:1.27", err: `image reference "Nginx:1.27"`},
		{in: "app@sha256:short", err: `image reference "app@sha256:short"`},
	} {
		got, err := imagescan.Normalize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Normalize(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if a, b := imagescan.ObjectName("index.docker.io/library/nginx:1.27"), imagescan.ObjectName("index.docker.io/library/nginx:1.28"); a == b || len(a) != len("img-")+40 {
		t.Errorf("object names %q and %q: want distinct img-<40 hex>", a, b)
	}
}

// A miss is pending at once and queued; once created, the spec carries
// the pod's credential hints; a stored result is returned, stale when its
// database is too old; a malformed reference is failed with the reason.
func TestStoreSummaries(t *testing.T) {
	cleanImageScans(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStore(t, 16, nil)
	go func() { _ = s.Start(ctx) }()

	podSpec := map[string]any{"serviceAccountName": "builder", "imagePullSecrets": []any{map[string]any{"name": "regcred"}, "junk", map[string]any{}}}
	got := s.Summaries(ctx, "shop", podSpec, []string{"nginx:1.27", "nginx:1.27", "Bad Image"})
	if len(got) != 2 || got["nginx:1.27"].Status != vuln.StatusPending {
		t.Fatalf("first sight: %+v; want nginx:1.27 pending", got)
	}
	if b := got["Bad Image"]; b.Status != vuln.StatusFailed || !strings.Contains(b.Error, `image reference "Bad Image"`) {
		t.Errorf("malformed reference: %+v; want failed naming it", b)
	}
	objName := imagescan.ObjectName("index.docker.io/library/nginx:1.27")
	var obj v1alpha1.ImageScan
	eventually(t, 10*time.Second, func() error { return env.cached.Get(ctx, client.ObjectKey{Name: objName}, &obj) })
	want := v1alpha1.ImageScanSpec{Image: "nginx:1.27", Namespace: "shop", ServiceAccountName: "builder", ImagePullSecrets: []string{"regcred"}}
	if d := cmp.Diff(want, obj.Spec); d != "" {
		t.Errorf("spec (-want +got):\n%s", d)
	}
	if got := s.Summaries(ctx, "shop", nil, []string{"docker.io/library/nginx:1.27"})["docker.io/library/nginx:1.27"]; got.Status != vuln.StatusPending {
		t.Errorf("created, not scanned: %+v; want pending", got)
	}

	// The scanner's result.
	fresh := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	obj.Status = v1alpha1.ImageScanStatus{Phase: v1alpha1.ImageScanScanned, Digest: "sha256:" + strings.Repeat("1", 64), OS: "debian 12.5",
		Counts: map[string]int32{"CRITICAL": 1, "HIGH": 2}, Fixable: map[string]int32{"CRITICAL": 1},
		Vulnerabilities: []v1alpha1.ImageVulnerability{{ID: "CVE-2026-0001", Package: "openssl", Installed: "3.0.1", Fixed: "3.0.9", Severity: "CRITICAL"}},
		Truncated:       true, ScannedAt: &fresh, DBUpdatedAt: &fresh}
	if err := env.client.Status().Update(ctx, &obj); err != nil {
		t.Fatal(err)
	}
	var sum *vuln.Summary
	eventually(t, 10*time.Second, func() error {
		if sum = s.Summaries(ctx, "shop", nil, []string{"nginx:1.27"})["nginx:1.27"]; sum.Status != vuln.StatusScanned {
			return fmt.Errorf("status %s", sum.Status)
		}
		return nil
	})
	wantSum := &vuln.Summary{Status: vuln.StatusScanned, Digest: obj.Status.Digest, OS: "debian 12.5", ScannedAt: fresh.Time, DBUpdatedAt: fresh.Time,
		Counts:  map[string]int{"CRITICAL": 1, "HIGH": 2, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0},
		Fixable: map[string]int{"CRITICAL": 1, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0}, Truncated: true,
		Vulns: []vuln.Vulnerability{{ID: "CVE-2026-0001", Package: "openssl", Installed: "3.0.1", Fixed: "3.0.9", Severity: "CRITICAL"}}}
	if d := cmp.Diff(wantSum, sum); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}

	// A result from a database older than the maximum age is stale.
	old := metav1.NewTime(time.Now().Add(-48 * time.Hour).Truncate(time.Second))
	obj.Status.DBUpdatedAt = &old
	if err := env.client.Get(ctx, client.ObjectKeyFromObject(&obj), &v1alpha1.ImageScan{}); err != nil {
		t.Fatal(err)
	}
	var cur v1alpha1.ImageScan
	if err := env.client.Get(ctx, client.ObjectKeyFromObject(&obj), &cur); err != nil {
		t.Fatal(err)
	}
	cur.Status.DBUpdatedAt = &old
	if err := env.client.Status().Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := s.Summaries(ctx, "shop", nil, []string{"nginx:1.27"})["nginx:1.27"]; got.Status != vuln.StatusStale || got.Counts["CRITICAL"] != 1 {
			return fmt.Errorf("old database: %+v; want stale, counts kept", got)
		}
		return nil
	})
	// So is one the scanner marked stale (its database cannot be read).
	cur.Status.DBUpdatedAt = &fresh
	cur.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionStale, Status: metav1.ConditionTrue, Reason: "DatabaseStale", Message: "x", LastTransitionTime: fresh}}
	if err := env.client.Get(ctx, client.ObjectKeyFromObject(&obj), &obj); err != nil {
		t.Fatal(err)
	}
	obj.Status = cur.Status
	if err := env.client.Status().Update(ctx, &obj); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := s.Summaries(ctx, "shop", nil, []string{"nginx:1.27"})["nginx:1.27"]; got.Status != vuln.StatusStale {
			return fmt.Errorf("condition Stale: %+v; want stale", got)
		}
		return nil
	})
	// A failed scan says why.
	obj.Status = v1alpha1.ImageScanStatus{Phase: v1alpha1.ImageScanFailed, Error: "resolving nginx:1.27: MANIFEST_UNKNOWN"}
	if err := env.client.Get(ctx, client.ObjectKeyFromObject(&obj), &cur); err != nil {
		t.Fatal(err)
	}
	cur.Status = obj.Status
	if err := env.client.Status().Update(ctx, &cur); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if got := s.Summaries(ctx, "shop", nil, []string{"nginx:1.27"})["nginx:1.27"]; got.Status != vuln.StatusFailed || !strings.Contains(got.Error, "MANIFEST_UNKNOWN") {
			return fmt.Errorf("failed: %+v", got)
		}
		return nil
	})
}

// A burst of 10,000 new images neither blocks nor grows goroutines: the
// queue takes what fits, the rest are dropped and counted, and nothing
// that was queued is lost.
func TestStoreBurstIsBounded(t *testing.T) {
	cleanImageScans(t)
	reg := prometheus.NewRegistry()
	s := newStore(t, 100, reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Summaries before the writers start: the queue fills and stays full.
	before := runtime.NumGoroutine()
	images := make([]string, 10000)
	for i := range images {
		images[i] = fmt.Sprintf("registry.corp/burst/app%05d:1.0", i)
	}
	got := s.Summaries(ctx, "shop", nil, images)
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Errorf("goroutines %d → %d for a burst of %d images", before, after, len(images))
	}
	if len(got) != len(images) {
		t.Fatalf("%d summaries for %d images", len(got), len(images))
	}
	for img, sum := range got {
		if sum.Status != vuln.StatusPending {
			t.Fatalf("%s: %s; want pending", img, sum.Status)
		}
	}
	queued := testutil.ToFloat64(mustCounter(t, reg, "tollgate_image_scan_queued_total"))
	dropped := testutil.ToFloat64(mustCounter(t, reg, "tollgate_image_scan_dropped_total"))
	if queued != 100 || dropped != 9900 {
		t.Errorf("queued %v, dropped %v; want 100 and 9900", queued, dropped)
	}
	// A dry run queues nothing.
	if sum := s.Summaries(vuln.WithoutQueueing(ctx), "shop", nil, []string{"registry.corp/dry/run:1.0"})["registry.corp/dry/run:1.0"]; sum.Status != vuln.StatusPending {
		t.Errorf("dry run: %+v; want pending", sum)
	}
	if q, d := testutil.ToFloat64(mustCounter(t, reg, "tollgate_image_scan_queued_total")), testutil.ToFloat64(mustCounter(t, reg, "tollgate_image_scan_dropped_total")); q != 100 || d != 9900 {
		t.Errorf("after a dry run: queued %v, dropped %v; want 100 and 9900 (nothing queued or dropped)", q, d)
	}
	// The same images again: the queued ones are not queued twice.
	s.Summaries(ctx, "shop", nil, images[:100])
	if q := testutil.ToFloat64(mustCounter(t, reg, "tollgate_image_scan_queued_total")); q != 100 {
		t.Errorf("queued %v after asking again; want 100 (deduplicated)", q)
	}
	go func() { _ = s.Start(ctx) }()
	eventually(t, 30*time.Second, func() error {
		var l v1alpha1.ImageScanList
		if err := env.client.List(ctx, &l); err != nil {
			return err
		}
		if len(l.Items) != 100 {
			return fmt.Errorf("%d ImageScans; want the 100 queued", len(l.Items))
		}
		return nil
	})
}

// mustCounter is the single series of a metric family, summed over labels.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			total := 0.0
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(total)
			return c
		}
	}
	t.Fatalf("no series %s", name)
	return nil
}

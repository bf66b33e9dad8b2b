package imagescan_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/imagescan"
	"github.com/tollgate-dev/tollgate/webhook"
)

const sbomNamespace = "tollgate-system"

func newScannerTB(tb testing.TB, f *fixedScanner) *imagescan.Scanner {
	tb.Helper()
	s, err := imagescan.New(imagescan.Options{
		Client: env.cached, Live: env.client, Scanner: f, Namespace: sbomNamespace, Poll: 100 * time.Millisecond, Insecure: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newScanner(t *testing.T, f *fixedScanner, reg prometheus.Registerer, edit func(*imagescan.Options)) *imagescan.Scanner {
	t.Helper()
	o := imagescan.Options{
		Client: env.cached, Live: env.client, Scanner: f, Keychains: &webhook.PullSecrets{Reader: env.client},
		Namespace: sbomNamespace, Poll: 100 * time.Millisecond, Concurrency: 2, Insecure: true,
		Metrics: imagescan.NewMetrics(reg),
	}
	if edit != nil {
		edit(&o)
	}
	s, err := imagescan.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// imageScans returns the ImageScans by spec.image.
func imageScans(t *testing.T) map[string]*v1alpha1.ImageScan { return imageScansTB(t) }

func imageScansTB(t testing.TB) map[string]*v1alpha1.ImageScan {
	t.Helper()
	var l v1alpha1.ImageScanList
	if err := env.client.List(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]*v1alpha1.ImageScan{}
	for i := range l.Items {
		out[l.Items[i].Spec.Image] = &l.Items[i]
	}
	return out
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s", name)
	return 0
}

// Every digest is scanned once however many pods and references run it;
// results reach every reference; a missing image fails with the reason
// while the others are scanned; a new leader rebuilds its index from the
// ImageScans and rescans nothing; a new database rescans every digest; a
// database that cannot be read marks results stale; unused images are
// collected after the retention period.
func TestScannerOncePerDigest(t *testing.T) {
	cleanImageScans(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	host := env.reg.Host()
	app, err := env.reg.PushRandom(ctx, "team/app", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	web, err := env.reg.PushRandom(ctx, "team/web", "2.0")
	if err != nil {
		t.Fatal(err)
	}
	running := "sha256:" + strings.Repeat("c", 64) // a digest only a kubelet reported
	for _, ns := range []string{"once-a", "once-b", sbomNamespace} {
		namespace(t, ns)
	}
	for i := range 20 {
		pod(t, "once-a", fmt.Sprintf("app-%d", i), []string{host + "/team/app:1.0", host + "/team/web:2.0"})
	}
	for i := range 5 {
		pod(t, "once-b", fmt.Sprintf("pinned-%d", i), []string{app.String()})
	}
	pod(t, "once-b", "gone", []string{host + "/team/gone:1.0"})
	pod(t, "once-b", "run", []string{host + "/team/run:1.0"}, "docker-pullable://"+host+"/team/run@"+running)

	f := newFixedScanner(time.Now().Add(-time.Hour))
	f.sbom = []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}`)
	reg := prometheus.NewRegistry()
	s := newScanner(t, f, reg, nil)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = s.Run(rctx); close(done) }()
	defer func() { stop(); <-done }() // also when a check below fails

	wantScanned := []string{host + "/team/app:1.0", app.String(), host + "/team/web:2.0", host + "/team/run:1.0"}
	eventually(t, 30*time.Second, func() error {
		got := imageScans(t)
		for _, img := range wantScanned {
			if o := got[img]; o == nil || o.Status.Phase != v1alpha1.ImageScanScanned {
				return fmt.Errorf("%s: not scanned yet (%+v)", img, o)
			}
		}
		if o := got[host+"/team/gone:1.0"]; o == nil || o.Status.Phase != v1alpha1.ImageScanFailed {
			return fmt.Errorf("gone: not failed yet (%+v)", o)
		}
		return nil
	})
	stop()
	<-done
	if n := f.total(); n != 3 {
		t.Errorf("%d scans for 3 digests (%v)", n, f.scans)
	}
	got := imageScans(t)
	if a, b := got[host+"/team/app:1.0"].Status, got[app.String()].Status; a.Digest != app.DigestStr() || b.Digest != a.Digest || a.Counts["CRITICAL"] != 1 || a.Counts["HIGH"] != 1 || a.Fixable["CRITICAL"] != 1 {
		t.Errorf("app: %+v / %+v; want digest %s, 1 CRITICAL (fixable), 1 HIGH", a, b, app.DigestStr())
	}
	if st := got[host+"/team/run:1.0"].Status; st.Digest != running {
		t.Errorf("run: digest %s; want the running %s", st.Digest, running)
	}
	if st := got[host+"/team/web:2.0"].Status; st.Digest != web.DigestStr() || len(st.Vulnerabilities) != 2 || st.Vulnerabilities[0].ID != "CVE-2026-0001" {
		t.Errorf("web: %+v", st)
	}
	if st := got[host+"/team/gone:1.0"].Status; !strings.Contains(st.Error, "resolving "+host+"/team/gone:1.0") {
		t.Errorf("gone: error %q; want it to say the tag could not be resolved", st.Error)
	}
	// The SBOM, in a ConfigMap named in the status.
	st := got[host+"/team/app:1.0"].Status
	var cm corev1.ConfigMap
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: sbomNamespace, Name: st.SBOM}, &cm); err != nil {
		t.Fatalf("SBOM ConfigMap %q: %v", st.SBOM, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(cm.BinaryData[imagescan.SBOMKey]))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); !bytes.Equal(b, f.sbom) {
		t.Errorf("stored SBOM %q; want %q", b, f.sbom)
	}
	if c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStale); c == nil || c.Status != "False" {
		t.Errorf("Stale condition %+v; want False", c)
	}
	if v := testutil.ToFloat64(mustCounter(t, reg, "tollgate_image_scan_scans_total")); v != 3 {
		t.Errorf("tollgate_image_scan_scans_total %v; want 3", v)
	}

	// A new leader: nothing in memory, nothing rescanned.
	reg2 := prometheus.NewRegistry()
	s2 := newScanner(t, f, reg2, nil)
	for range 2 {
		if err := s2.Pass(ctx); err != nil && !strings.Contains(err.Error(), "gone") {
			t.Fatal(err)
		}
	}
	if q, c := gauge(t, reg2, "tollgate_image_scan_queue_length"), gauge(t, reg2, "tollgate_image_scan_cache_size"); q != 0 || c != 3 {
		t.Errorf("new leader: %v digests queued, %v known; want 0 and 3", q, c)
	}

	// A new database: every digest is due.
	f.setDB(vuln.DBInfo{UpdatedAt: time.Now()}, nil)
	_ = s2.Pass(ctx)
	if q := gauge(t, reg2, "tollgate_image_scan_queue_length"); q != 3 {
		t.Errorf("new database: %v digests queued; want 3", q)
	}

	// A database that cannot be read: results stay, marked stale.
	f.setDB(vuln.DBInfo{}, errors.New("MANIFEST_UNKNOWN: 127.0.0.1:1/trivy-db:2"))
	s3reg := prometheus.NewRegistry()
	s3 := newScanner(t, f, s3reg, nil)
	_ = s3.Pass(ctx)
	if v := gauge(t, s3reg, "tollgate_image_scan_database_stale"); v != 1 {
		t.Errorf("tollgate_image_scan_database_stale %v; want 1", v)
	}
	eventually(t, 10*time.Second, func() error {
		st := imageScans(t)[host+"/team/app:1.0"].Status
		c := apimeta.FindStatusCondition(st.Conditions, v1alpha1.ConditionStale)
		if c == nil || c.Status != "True" || !strings.Contains(c.Message, "MANIFEST_UNKNOWN") || st.Counts["CRITICAL"] != 1 {
			return fmt.Errorf("Stale %+v, counts %v; want True with the database error, results kept", c, st.Counts)
		}
		return nil
	})

	// Retention: pods gone for longer than it, their ImageScans and SBOMs go.
	for _, ns := range []string{"once-a", "once-b"} {
		if err := env.client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	later := newScanner(t, f, nil, func(o *imagescan.Options) {
		o.Retention = time.Hour
		o.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	})
	eventually(t, 10*time.Second, func() error {
		_ = later.Pass(ctx)
		if n := len(imageScans(t)); n != 0 {
			return fmt.Errorf("%d ImageScans left", n)
		}
		var cms corev1.ConfigMapList
		if err := env.client.List(ctx, &cms, client.InNamespace(sbomNamespace)); err != nil {
			return err
		}
		for _, cm := range cms.Items {
			if strings.HasPrefix(cm.Name, "sbom-") {
				return fmt.Errorf("SBOM ConfigMap %s left", cm.Name)
			}
		}
		return nil
	})
}

// An SBOM over the cap is not stored; the condition says how to get it.
func TestScannerSBOMTooLarge(t *testing.T) {
	cleanImageScans(t)
	ctx := context.Background()
	big, err := env.reg.PushRandom(ctx, "team/big", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	namespace(t, "sbom-big")
	pod(t, "sbom-big", "big", []string{big.String()})
	f := newFixedScanner(time.Now())
	f.sbom = make([]byte, 64<<10)
	_, _ = rand.Read(f.sbom) // incompressible
	s := newScanner(t, f, nil, func(o *imagescan.Options) { o.SBOMMaxBytes = 16 << 10 })
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = s.Run(rctx) }()
	eventually(t, 20*time.Second, func() error {
		st := imageScans(t)[big.String()]
		if st == nil || st.Status.Phase != v1alpha1.ImageScanScanned {
			return errors.New("not scanned yet")
		}
		c := apimeta.FindStatusCondition(st.Status.Conditions, v1alpha1.ConditionSBOMStored)
		if c == nil || c.Status != "False" || c.Reason != "TooLarge" || !strings.Contains(c.Message, "tollgate scan image --format cyclonedx "+big.String()) || st.Status.SBOM != "" {
			return fmt.Errorf("SBOMStored %+v, sbom %q", c, st.Status.SBOM)
		}
		return nil
	})
}

// Options a scanner cannot work without are named.
func TestScannerOptions(t *testing.T) {
	if _, err := imagescan.New(imagescan.Options{Client: env.client, Live: env.client}); err == nil || !strings.Contains(err.Error(), "Scanner") {
		t.Errorf("New without a Scanner: %v", err)
	}
	if _, err := imagescan.NewStore(imagescan.StoreOptions{}); err == nil || !strings.Contains(err.Error(), "Reader") {
		t.Errorf("NewStore without a Reader: %v", err)
	}
}

// ImageScans made by hand are never scanned nor read as another image's
// result: one named for nginx:1.27 that holds another image, and one whose
// image is no reference, are failed with the reason; the store answers
// nginx:1.27 with that failure, not with the other image's result.
func TestScannerHostileImageScans(t *testing.T) {
	cleanImageScans(t)
	ctx := context.Background()
	forged := imagescan.ObjectName("index.docker.io/library/nginx:1.27")
	for _, obj := range []*v1alpha1.ImageScan{
		{ObjectMeta: metav1.ObjectMeta{Name: forged}, Spec: v1alpha1.ImageScanSpec{Image: "registry.corp/clean:1.0"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "img-junk"}, Spec: v1alpha1.ImageScanSpec{Image: "Not A Reference"}},
	} {
		if err := env.client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixedScanner(time.Now())
	s := newScanner(t, f, nil, nil)
	eventually(t, 10*time.Second, func() error {
		_ = s.Pass(ctx)
		got := map[string]string{}
		for _, o := range imageScans(t) {
			got[o.Name] = o.Status.Phase + ": " + o.Status.Error
		}
		if !strings.HasPrefix(got[forged], "Failed: not scanned: an ImageScan's name is img-") ||
			!strings.HasPrefix(got["img-junk"], `Failed: not scanned: spec.image: image reference "Not A Reference"`) {
			return fmt.Errorf("statuses %q", got)
		}
		return nil
	})
	if n := f.total(); n != 0 {
		t.Errorf("%d scans of hand-made ImageScans", n)
	}
	store := newStore(t, 4, nil)
	eventually(t, 10*time.Second, func() error {
		sum := store.Summaries(ctx, "shop", nil, []string{"nginx:1.27"})["nginx:1.27"]
		if sum.Status != vuln.StatusFailed || !strings.Contains(sum.Error, "is not the scan of nginx:1.27 (its spec.image is registry.corp/clean:1.0)") {
			return fmt.Errorf("summary %+v", sum)
		}
		return nil
	})
}

// A scan that fails (the image gone from its registry after its tag was
// resolved) fails the ImageScan with the reason and is not retried before
// RetryFailed; once it succeeds, a failing rescan keeps the result and says
// the rescan failed.
func TestScannerScanFailures(t *testing.T) {
	cleanImageScans(t)
	ctx := context.Background()
	img, err := env.reg.PushRandom(ctx, "team/flaky", "1.0")
	if err != nil {
		t.Fatal(err)
	}
	namespace(t, "flaky")
	pod(t, "flaky", "flaky", []string{img.String()})
	f := newFixedScanner(time.Now())
	f.fail[img.DigestStr()] = errors.New("MANIFEST_UNKNOWN: manifest unknown")
	status := func() v1alpha1.ImageScanStatus {
		o := imageScans(t)[img.String()]
		if o == nil {
			return v1alpha1.ImageScanStatus{}
		}
		return o.Status
	}
	run := func(edit func(*imagescan.Options), until func(v1alpha1.ImageScanStatus) error) {
		t.Helper()
		s := newScanner(t, f, nil, edit)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = s.Run(rctx); close(done) }()
		defer func() { stop(); <-done }()
		eventually(t, 20*time.Second, func() error { return until(status()) })
	}
	run(func(o *imagescan.Options) { o.RetryFailed = time.Hour }, func(st v1alpha1.ImageScanStatus) error {
		if st.Phase != v1alpha1.ImageScanFailed || !strings.Contains(st.Error, "MANIFEST_UNKNOWN") || st.Digest != img.DigestStr() {
			return fmt.Errorf("status %+v; want Failed with the scanner's error", st)
		}
		return nil
	})
	f.mu.Lock()
	n := f.scans[img.DigestStr()] // other tests' pods run other digests
	f.mu.Unlock()
	if n != 1 {
		t.Errorf("%d scans of a failing digest within RetryFailed; want 1", n)
	}
	delete(f.fail, img.DigestStr())
	run(func(o *imagescan.Options) { o.RetryFailed = time.Millisecond }, func(st v1alpha1.ImageScanStatus) error {
		if st.Phase != v1alpha1.ImageScanScanned || st.Error != "" {
			return fmt.Errorf("status %+v; want Scanned after the retry", st)
		}
		return nil
	})
	// A new database makes the digest due; its rescan fails.
	f.mu.Lock()
	f.fail[img.DigestStr()] = errors.New("MANIFEST_UNKNOWN: manifest unknown")
	f.mu.Unlock()
	f.setDB(vuln.DBInfo{UpdatedAt: time.Now().Add(time.Minute)}, nil)
	run(nil, func(st v1alpha1.ImageScanStatus) error {
		if st.Phase != v1alpha1.ImageScanScanned || !strings.HasPrefix(st.Error, "rescan failed: MANIFEST_UNKNOWN") || st.Counts["CRITICAL"] != 1 {
			return fmt.Errorf("status %+v; want the last result kept, with the rescan's error", st)
		}
		return nil
	})
}

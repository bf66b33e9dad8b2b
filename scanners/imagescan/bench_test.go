package imagescan_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/scanners/imagescan"
)

// benchPods is 1,000 pods over 50 images (20 each, by tag), created once.
var benchPods struct {
	once sync.Once
	err  error
}

func setupBenchPods(b *testing.B) {
	b.Helper()
	benchPods.once.Do(func() {
		ctx := context.Background()
		if err := env.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}); err != nil {
			benchPods.err = err
			return
		}
		images := make([]string, 50)
		for i := range images {
			if _, err := env.reg.PushRandom(ctx, fmt.Sprintf("bench/app%02d", i), "1.0"); err != nil {
				benchPods.err = err
				return
			}
			images[i] = fmt.Sprintf("%s/bench/app%02d:1.0", env.reg.Host(), i)
		}
		for i := range 1000 {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("pod-%04d", i)},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: images[i%50]}}}}
			if err := env.client.Create(ctx, p); err != nil {
				benchPods.err = err
				return
			}
		}
	})
	if benchPods.err != nil {
		b.Fatal(benchPods.err)
	}
}

// BenchmarkSteadyState is the scanner's cost once every image is
// scanned: one pass over 1,000 pods of 50 images (listing the pods and the
// ImageScans, nothing to write). The first scans are counted before the
// timer starts: 50, one per digest, or the benchmark fails.
func BenchmarkSteadyState(b *testing.B) {
	setupBenchPods(b)
	cleanImageScans(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixedScanner(time.Now())
	s := newScannerTB(b, f)
	start := time.Now()
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	eventually(b, 2*time.Minute, func() error {
		n := 0
		for _, o := range imageScansTB(b) {
			if o.Status.Phase == v1alpha1.ImageScanScanned {
				n++
			}
		}
		if n != 50 {
			return fmt.Errorf("%d of 50 images scanned", n)
		}
		return nil
	})
	cold := time.Since(start)
	cancel()
	<-done
	if n := f.total(); n != 50 {
		b.Fatalf("%d scans for 1,000 pods of 50 images; want 50", n)
	}
	steady := newScannerTB(b, f)
	b.ResetTimer()
	for b.Loop() {
		if err := steady.Pass(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := f.total(); n != 50 {
		b.Fatalf("%d scans after %d steady passes; want the first 50 only", n, b.N)
	}
	b.ReportMetric(float64(f.total()), "scans")
	b.ReportMetric(cold.Seconds(), "first-pass-s")
}

// BenchmarkSummaries is what admission pays per pod of four images whose
// scans each list the most vulnerabilities a result holds (200), read
// from the informer's cache.
func BenchmarkSummaries(b *testing.B) {
	cleanImageScans(b)
	ctx := context.Background()
	images := []string{"registry.corp/a:1", "registry.corp/b:1", "registry.corp/c:1", "registry.corp/d:1"}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	for _, img := range images {
		norm, _ := imagescan.Normalize(img)
		obj := &v1alpha1.ImageScan{ObjectMeta: metav1.ObjectMeta{Name: imagescan.ObjectName(norm)}, Spec: v1alpha1.ImageScanSpec{Image: img}}
		if err := env.client.Create(ctx, obj); err != nil {
			b.Fatal(err)
		}
		obj.Status = v1alpha1.ImageScanStatus{Phase: v1alpha1.ImageScanScanned, Digest: "sha256:" + fmt.Sprintf("%064d", 1),
			Counts: map[string]int32{"HIGH": 200}, ScannedAt: &now, DBUpdatedAt: &now, Truncated: true}
		for i := range 200 {
			obj.Status.Vulnerabilities = append(obj.Status.Vulnerabilities, v1alpha1.ImageVulnerability{
				ID: fmt.Sprintf("CVE-2026-%05d", i), Package: "libexample", Installed: "1.0", Fixed: "1.1", Severity: "HIGH", Title: "example"})
		}
		if err := env.client.Status().Update(ctx, obj); err != nil {
			b.Fatal(err)
		}
	}
	s, err := imagescan.NewStore(imagescan.StoreOptions{Reader: env.cached, Writer: env.client})
	if err != nil {
		b.Fatal(err)
	}
	eventually(b, 10*time.Second, func() error {
		for img, sum := range s.Summaries(ctx, "shop", nil, images) {
			if sum.Status != "scanned" || len(sum.Vulns) != 200 {
				return fmt.Errorf("%s: %s, %d listed", img, sum.Status, len(sum.Vulns))
			}
		}
		return nil
	})
	b.ReportAllocs()
	for b.Loop() {
		s.Summaries(ctx, "shop", nil, images)
	}
}

package imagescan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/test/registry"
	"github.com/tollgate-dev/tollgate/webhook"
)

// env is the API server and registry the package's tests share.
var env struct {
	cluster *cluster.Cluster
	client  client.Client
	cached  client.Client // reads from an informer cache, as in serve
	reg     *registry.Registry
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := cluster.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := cluster.Start(ctx, cluster.Options{CRDDirs: []string{filepath.Join(root, "charts", "tollgate", "crds")}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the API server:", err)
		return 1
	}
	defer func() { _ = c.Stop() }()
	env.cluster = c
	if env.client, err = client.New(c.Config(), client.Options{Scheme: webhook.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ca, err := cache.New(c.Config(), cache.Options{Scheme: webhook.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := ca.GetInformer(ctx, &v1alpha1.ImageScan{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = ca.Start(ctx) }()
	ca.WaitForCacheSync(ctx)
	if env.cached, err = client.New(c.Config(), client.Options{Scheme: webhook.Scheme(), Cache: &client.CacheOptions{Reader: ca}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if env.reg, err = registry.Start(ctx, registry.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the registry:", err)
		return 1
	}
	defer func() { _ = env.reg.Stop() }()
	return m.Run()
}

// fixedScanner reports fixed vulnerabilities for every image and counts
// its scans: it stands in for Trivy where what is tested is queueing,
// deduplication and storage, never the scan.
type fixedScanner struct {
	mu    sync.Mutex
	scans map[string]int // by digest
	db    vuln.DBInfo
	dbErr error
	fail  map[string]error // by digest
	sbom  []byte
	vulns []vuln.Vulnerability
}

var _ vuln.Scanner = (*fixedScanner)(nil)

func newFixedScanner(dbUpdated time.Time) *fixedScanner {
	return &fixedScanner{
		scans: map[string]int{}, fail: map[string]error{},
		db: vuln.DBInfo{UpdatedAt: dbUpdated, Repository: "127.0.0.1/trivy-db:2"},
		vulns: []vuln.Vulnerability{
			{ID: "CVE-2026-0001", Package: "openssl", Installed: "3.0.1", Fixed: "3.0.9", Severity: vuln.Critical, Class: "os-pkgs", Type: "debian"},
			{ID: "CVE-2026-0002", Package: "golang.org/x/net", Installed: "v0.1.0", Severity: vuln.High, Class: "lang-pkgs", Type: "gobinary"},
		},
	}
}

func (f *fixedScanner) Scan(_ context.Context, image string, _ authn.Keychain) (*vuln.Report, error) {
	_, digest, _ := strings.Cut(image, "@")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scans[digest]++
	if err := f.fail[digest]; err != nil {
		return nil, err
	}
	return &vuln.Report{Image: image, Digest: digest, OS: "debian 12.5", Packages: 90,
		Vulnerabilities: append([]vuln.Vulnerability(nil), f.vulns...), DB: f.db, ScannedAt: time.Now(), SBOM: f.sbom}, nil
}

func (f *fixedScanner) Database(context.Context) (vuln.DBInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.db, f.dbErr
}

func (f *fixedScanner) setDB(info vuln.DBInfo, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.db, f.dbErr = info, err
}

// total is the scans performed; of is one digest's.
func (f *fixedScanner) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.scans {
		n += v
	}
	return n
}

// namespace creates a namespace for one test.
func namespace(t testing.TB, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
}

// pod creates a pod running images (one container each); running, when
// set, is written to its status as the kubelet would (container i runs
// running[i], "" for none).
func pod(t testing.TB, ns, name string, images []string, running ...string) {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	if err := env.client.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	if len(running) == 0 {
		return
	}
	for i, id := range running {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: fmt.Sprintf("c%d", i), Image: images[i], ImageID: id})
	}
	if err := env.client.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// cleanImageScans deletes every ImageScan, so tests do not see each
// other's.
func cleanImageScans(t testing.TB) {
	t.Helper()
	if err := env.client.DeleteAllOf(context.Background(), &v1alpha1.ImageScan{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		var l v1alpha1.ImageScanList
		if err := env.cached.List(context.Background(), &l); err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d ImageScans left", len(l.Items))
		}
		return nil
	})
}

// eventually retries f until it returns nil or the deadline passes.
var eventually = proc.Eventually

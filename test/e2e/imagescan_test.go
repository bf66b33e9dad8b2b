package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/serve"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/imagescan"
	"github.com/tollgate-dev/tollgate/scanners/trivy"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/test/registry"
	"github.com/tollgate-dev/tollgate/test/trivytest"
)

// scanFixture is what image scanning tests scan: test images with planted
// packages in one registry, the vulnerability database built from the
// planted advisories in another (so it can go down alone), and trivy.
type scanFixture struct {
	images, db               *registry.Registry
	dbRef                    string
	trivy                    string
	vulnerable, clean, other string // tag references (:1.0)
}

var scans struct {
	once sync.Once
	f    *scanFixture
	err  error
}

// scanSetup builds the fixture once for the package's tests.
func scanSetup(t *testing.T) *scanFixture {
	t.Helper()
	scans.once.Do(func() { scans.f, scans.err = newScanFixture(context.Background()) })
	if scans.err != nil {
		t.Fatal(scans.err)
	}
	return scans.f
}

func newScanFixture(ctx context.Context) (*scanFixture, error) {
	f := &scanFixture{}
	var err error
	if f.trivy, err = trivytest.TrivyBinary(); err != nil {
		return nil, err
	}
	if f.images, err = registry.Start(ctx, registry.Options{}); err != nil {
		return nil, err
	}
	if f.db, err = registry.Start(ctx, registry.Options{}); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tollgate-e2e-scan-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	db, err := trivytest.BuildDB(ctx, dir, trivytest.Advisories())
	if err != nil {
		return nil, err
	}
	if f.dbRef, err = trivytest.PushDB(ctx, f.db.Host(), "trivy-db", db); err != nil {
		return nil, err
	}
	host := f.images.Host()
	push := map[string]func() (string, error){
		"debian": func() (string, error) { return trivytest.PushDebianImage(ctx, host, "team/debian", dir) },
		"clean":  func() (string, error) { return trivytest.PushCleanImage(ctx, host, "team/clean") },
		"alpine": func() (string, error) { return trivytest.PushAlpineImage(ctx, host, "team/alpine") },
	}
	refs := map[string]string{}
	for repo, p := range push {
		digest, err := p()
		if err != nil {
			return nil, err
		}
		if refs[repo], err = tag(ctx, digest, "1.0"); err != nil {
			return nil, err
		}
	}
	f.vulnerable, f.clean, f.other = refs["debian"], refs["clean"], refs["alpine"]
	return f, nil
}

// tag tags a pushed digest reference and returns the tag reference.
func tag(ctx context.Context, digest, tagName string) (string, error) {
	d, err := name.NewDigest(digest, name.Insecure)
	if err != nil {
		return "", err
	}
	desc, err := remote.Get(d, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	t := d.Context().Tag(tagName)
	if err := remote.Tag(t, desc, remote.WithContext(ctx)); err != nil {
		return "", err
	}
	return t.String(), nil
}

// scanServer is a `tollgate serve --scan-images` beside the shared
// server: it registers no webhooks, leaves the audit's Reports to the
// shared server, and leads alone (no election), as a new leader would
// after the last one stopped.
type scanServer struct {
	stop func()
	port int
	log  *proc.Buffer
}

func startScanServer(t *testing.T, f *scanFixture, dbRepo string) *scanServer {
	t.Helper()
	s := &scanServer{log: &proc.Buffer{}}
	var err error
	s.stop, s.port, err = startServer(context.Background(), serverOptions{
		name: "tollgate-scan", log: s.log, decisions: &proc.Buffer{}, unmanaged: true, configName: "tollgate-scan",
		// Its audit writes Reports of its own, with the scans it reads.
		auditReport: "tollgate-scan", auditInterval: 3 * time.Second,
		imageScan: &serve.ImageScanOptions{
			Enabled: true,
			Trivy: trivy.Options{Binary: f.trivy, CacheDir: t.TempDir(), DBRepository: dbRepo, Insecure: true, SBOM: true,
				Timeout: 2 * time.Minute},
			Poll: time.Second, Concurrency: 2, MaxAge: 24 * time.Hour, Retention: 24 * time.Hour, DBUpdateInterval: time.Hour,
		},
	})
	if err != nil {
		t.Fatalf("starting the scanning server: %v\n%s", err, s.log.String())
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("scanning server log (last 8 KiB):\n%s", tail(s.log.String(), 8<<10))
		}
	})
	return s
}

// metric is the sum of a series' samples whose labels contain match.
func (s *scanServer) metric(t *testing.T, series, match string) float64 {
	t.Helper()
	body := scrape(t, apiServerClient(t), fmt.Sprintf("https://127.0.0.1:%d", s.port))
	var n float64
	for line := range strings.Lines(body) {
		if !strings.HasPrefix(line, series+"{") && !strings.HasPrefix(line, series+" ") || !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			n += v
		}
	}
	return n
}

func imageScanOf(t *testing.T, image string) *v1alpha1.ImageScan {
	t.Helper()
	norm, err := imagescan.Normalize(image)
	if err != nil {
		t.Fatal(err)
	}
	var obj v1alpha1.ImageScan
	if err := env.client.Get(context.Background(), client.ObjectKey{Name: imagescan.ObjectName(norm)}, &obj); err != nil {
		return nil
	}
	return &obj
}

func waitScanned(t *testing.T, images ...string) {
	t.Helper()
	eventually(t, 90*time.Second, func() error {
		for _, img := range images {
			obj := imageScanOf(t, img)
			if obj == nil || obj.Status.Phase != v1alpha1.ImageScanScanned {
				return fmt.Errorf("%s not scanned: %+v", img, obj)
			}
		}
		return nil
	})
}

const scanDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q,"namespace":"scans"},
 "spec":{"replicas":%d,"selector":{"matchLabels":{"app":%[1]q}},"template":{"metadata":{"labels":{"app":%[1]q}},
  "spec":{"containers":[{"name":"app","image":%[3]q}]}}}}`

// ids are the advisory ids and fixed versions of vulnerabilities, sorted.
func ids[V vuln.Vulnerability | v1alpha1.ImageVulnerability](vs []V) []string {
	var out []string
	for _, v := range vs {
		switch v := any(v).(type) {
		case vuln.Vulnerability:
			out = append(out, v.ID+" "+v.Package+" "+v.Fixed)
		case v1alpha1.ImageVulnerability:
			out = append(out, v.ID+" "+v.Package+" "+v.Fixed)
		}
	}
	slices.Sort(out)
	return out
}

// TestImageScanning, on the real API server with Trivy and a database
// built from planted advisories: Deployments running a vulnerable and a
// clean image are both scanned and their ImageScans show exactly the
// planted vulnerabilities; 50 pods of one image cost one scan; a new
// leader keeps every result and rescans nothing; with the database's
// repository down and no database, results are kept but marked stale,
// never silently current.
func TestImageScanning(t *testing.T) {
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f := scanSetup(t)
	ctx := context.Background()
	teamNamespace(t, "scans")
	t.Cleanup(func() {
		// The 50 pods and the rest go with their namespaces; the
		// ImageScans stay, as they would until the retention period.
		for _, ns := range []string{"scans", "scans-prod"} {
			_, _, _ = env.cluster.Kubectl(context.Background(), "delete", "namespace", ns, "--wait=false")
		}
	})
	srv := startScanServer(t, f, f.dbRef)

	for name, image := range map[string]string{"vulnerable": f.vulnerable, "clean": f.clean} {
		if _, stderr, err := apply(t, fmt.Sprintf(scanDeployment, name, 1, image)); err != nil {
			t.Fatalf("deployment %s: %v\n%s", name, err, stderr)
		}
	}
	waitScanned(t, f.vulnerable, f.clean)
	vul, clean := imageScanOf(t, f.vulnerable), imageScanOf(t, f.clean)
	if got, want := ids(vul.Status.Vulnerabilities), ids(trivytest.WantDebian()); !slices.Equal(got, want) {
		t.Errorf("vulnerable image: found %q; want the planted %q", got, want)
	}
	if vul.Status.OS == "" || !strings.HasPrefix(vul.Status.Digest, "sha256:") || vul.Status.SBOM == "" {
		t.Errorf("vulnerable image: os %q, digest %q, sbom %q", vul.Status.OS, vul.Status.Digest, vul.Status.SBOM)
	}
	if n := len(clean.Status.Vulnerabilities); n != 0 || clean.Status.Counts[vuln.Critical] != 0 {
		t.Errorf("clean image: %d vulnerabilities %v; want none", n, clean.Status.Counts)
	}
	var sbom corev1.ConfigMap
	if err := env.client.Get(ctx, client.ObjectKey{Namespace: "tollgate-system", Name: vul.Status.SBOM}, &sbom); err != nil || len(sbom.BinaryData[imagescan.SBOMKey]) == 0 {
		t.Errorf("SBOM ConfigMap %s: %v", vul.Status.SBOM, err)
	}

	t.Run("the audit's Reports carry each vulnerable image's scan", func(t *testing.T) {
		eventually(t, 90*time.Second, func() error {
			results, err := reportResults(ctx, "scans", "tollgate-scan")
			if err != nil {
				return err
			}
			for _, res := range results {
				if res["policy"] != "images-vulnerability-report" || !strings.Contains(fmt.Sprint(res["resources"]), "vulnerable") {
					continue
				}
				props, _ := res["properties"].(map[string]any)
				if props["criticalCount"] != "1" || props["highCount"] != "1" || props["digest"] != vul.Status.Digest ||
					!strings.Contains(fmt.Sprint(props["vulnerabilities"]), "CVE-2026-10001 HIGH openssl 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1") {
					return fmt.Errorf("the vulnerable Deployment's result: %v", props)
				}
				return nil
			}
			return fmt.Errorf("no images-vulnerability-report result for the vulnerable Deployment among %d results", len(results))
		})
		results, err := reportResults(ctx, "scans", "tollgate-scan")
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range results {
			if res["policy"] == "images-vulnerability-report" && strings.Contains(fmt.Sprint(res["resources"]), "clean") {
				t.Errorf("the clean image has a vulnerability report: %v", res)
			}
		}
	})

	t.Run("50 pods of one image, one scan", func(t *testing.T) {
		before := srv.metric(t, "tollgate_image_scan_scans_total", "")
		if _, stderr, err := apply(t, fmt.Sprintf(scanDeployment, "fifty", 50, f.other)); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		eventually(t, 90*time.Second, func() error {
			var pods corev1.PodList
			if err := env.client.List(ctx, &pods, client.InNamespace("scans"), client.MatchingLabels{"app": "fifty"}); err != nil {
				return err
			}
			if len(pods.Items) != 50 {
				return fmt.Errorf("%d of 50 pods", len(pods.Items))
			}
			return nil
		})
		waitScanned(t, f.other)
		// Passes go on every second: a few more, and the count stands.
		time.Sleep(3 * time.Second)
		after := srv.metric(t, "tollgate_image_scan_scans_total", "")
		if after-before != 1 {
			t.Errorf("%v scans for 50 pods of one image; want 1", after-before)
		}
		if got, want := ids(imageScanOf(t, f.other).Status.Vulnerabilities), ids(trivytest.WantAlpine()); !slices.Equal(got, want) {
			t.Errorf("alpine image: found %q; want %q", got, want)
		}
		t.Logf("%v ImageScans, %v scans in all", srv.metric(t, "tollgate_image_scan_images", ""), after)
	})

	t.Run("queued by admission: another reference to a scanned digest shares its scan", func(t *testing.T) {
		// What admission does with an image it has no result for: pending
		// at once, its ImageScan created; the leader finds the digest
		// scanned and copies the result.
		store, err := imagescan.NewStore(imagescan.StoreOptions{Reader: env.client, Writer: env.client, MaxAge: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = store.Start(sctx) }()
		pinned := strings.TrimSuffix(f.vulnerable, ":1.0") + "@" + vul.Status.Digest
		before := srv.metric(t, "tollgate_image_scan_scans_total", "")
		if sum := store.Summaries(ctx, "scans", nil, []string{pinned})[pinned]; sum.Status != vuln.StatusPending {
			t.Fatalf("first sight of %s: %+v; want pending", pinned, sum)
		}
		eventually(t, 30*time.Second, func() error {
			sum := store.Summaries(ctx, "scans", nil, []string{pinned})[pinned]
			if sum.Status != vuln.StatusScanned {
				return fmt.Errorf("%s: %+v", pinned, sum)
			}
			if got, want := ids(sum.Vulns), ids(trivytest.WantDebian()); !slices.Equal(got, want) {
				return fmt.Errorf("%s: %q; want %q", pinned, got, want)
			}
			return nil
		})
		if after := srv.metric(t, "tollgate_image_scan_scans_total", ""); after != before {
			t.Errorf("%v scans for a digest already scanned; want none", after-before)
		}
	})

	t.Run("admission: the library's scan policies judge input.imageScans", func(t *testing.T) {
		ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"scans-prod","labels":{"tier":"production","team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}}}`
		if _, _, err := apply(t, ns); err != nil {
			t.Fatal(err)
		}
		var critical []string // the planted CRITICAL vulnerabilities with a fix
		for _, v := range trivytest.WantAlpine() {
			if v.Severity == vuln.Critical && v.Fixed != "" {
				critical = append(critical, v.ID)
			}
		}
		if len(critical) == 0 {
			t.Fatal("the planted advisories hold no fixable CRITICAL vulnerability")
		}
		// Warn by default: allowed, the warning names each fixable CRITICAL.
		allowed, msgs := srv.review(t, "scans-prod", "web", f.other)
		if !allowed || !containsAll(msgs, append([]string{"[images-vulnerabilities]"}, critical...)) {
			t.Errorf("vulnerable image in production: allowed %v, %q; want allowed with a warning naming %v", allowed, msgs, critical)
		}
		// The clean image, and the Debian one whose CRITICAL has no fix: no
		// warning of either scan policy.
		for name, image := range map[string]string{"clean": f.clean, "nofix": f.vulnerable} {
			if allowed, msgs := srv.review(t, "scans-prod", name, image); !allowed || strings.Contains(strings.Join(msgs, "\n"), "[images-") {
				t.Errorf("%s image: allowed %v, %q; want no scan finding", name, allowed, msgs)
			}
		}
		// An image never seen: pending, queued, warned by images-unscanned.
		never := f.images.Host() + "/team/never:1.0"
		if allowed, msgs := srv.review(t, "scans-prod", "never", never); !allowed || !containsAll(msgs, []string{"[images-unscanned]", "queued for scanning"}) {
			t.Errorf("unscanned image: allowed %v, %q", allowed, msgs)
		}
		// Enforced: denied with the same findings.
		cfg := `apiVersion: tollgate.dev/v1alpha1
kind: TollgateConfig
metadata: {name: tollgate-scan}
spec:
  policies:
    images-vulnerabilities: {action: enforce}
`
		if _, stderr, err := apply(t, cfg); err != nil {
			t.Fatalf("%v: %s", err, stderr)
		}
		t.Cleanup(func() {
			_, _, _ = env.cluster.Kubectl(context.Background(), "delete", "tollgateconfig", "tollgate-scan")
		})
		eventually(t, 30*time.Second, func() error {
			allowed, msgs := srv.review(t, "scans-prod", "web", f.other)
			if allowed || !containsAll(msgs, append([]string{"[images-vulnerabilities]"}, critical...)) {
				return fmt.Errorf("enforced: allowed %v, %q; want denied naming %v", allowed, msgs, critical)
			}
			return nil
		})
	})

	t.Run("a new leader keeps the results and rescans nothing", func(t *testing.T) {
		srv.stop()
		next := startScanServer(t, f, f.dbRef)
		eventually(t, 60*time.Second, func() error {
			if n := next.metric(t, "tollgate_image_scan_cache_size", ""); n != 3 {
				return fmt.Errorf("the new leader knows %v digests; want the 3 scanned, its index rebuilt from the ImageScans", n)
			}
			return nil
		})
		time.Sleep(2 * time.Second)
		if q, s := next.metric(t, "tollgate_image_scan_queued_total", `source="scanner"`), next.metric(t, "tollgate_image_scan_scans_total", ""); q != 0 || s != 0 {
			t.Errorf("the new leader queued %v and ran %v scans; want none", q, s)
		}
		for _, img := range []string{f.vulnerable, f.clean, f.other} {
			if obj := imageScanOf(t, img); obj == nil || obj.Status.Phase != v1alpha1.ImageScanScanned {
				t.Errorf("%s after the leader change: %+v", img, obj)
			}
		}
		out, err := console(t, "", "get", "imagescans", "--sort-by=.spec.image")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		docexample.Check(t, root, "e2e-scan-imagescans", out)
		next.stop()
	})

	t.Run("database repository down: stale, never current", func(t *testing.T) {
		if err := f.db.Stop(); err != nil {
			t.Fatal(err)
		}
		down := startScanServer(t, f, f.dbRef) // a new leader with no database, and none to fetch
		eventually(t, 60*time.Second, func() error {
			obj := imageScanOf(t, f.vulnerable)
			c := apimeta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionStale)
			if c == nil || c.Status != "True" || !strings.Contains(c.Message, "cannot be read") || !strings.Contains(c.Message, "update failed") {
				return fmt.Errorf("Stale condition %+v; want True, saying the database cannot be read and the update failed", c)
			}
			return nil
		})
		if v := down.metric(t, "tollgate_image_scan_database_stale", ""); v != 1 {
			t.Errorf("tollgate_image_scan_database_stale %v; want 1", v)
		}
		store, err := imagescan.NewStore(imagescan.StoreOptions{Reader: env.client, Writer: env.client, MaxAge: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		sum := store.Summaries(ctx, "scans", nil, []string{f.vulnerable})[f.vulnerable]
		if sum.Status != vuln.StatusStale || sum.Counts[vuln.Critical]+sum.Counts[vuln.High] == 0 {
			t.Errorf("summary %+v; want stale with the last counts", sum)
		}
		// At admission: a stale result never passes silently.
		allowed, msgs := down.review(t, "scans-prod", "web", f.clean)
		if !allowed || !containsAll(msgs, []string{"[images-unscanned]", "stale vulnerability database"}) {
			t.Errorf("clean image with a stale database: allowed %v, %q; want a warning that the database is stale", allowed, msgs)
		}
		out, err := console(t, "", "get", "imagescans", "-o", "wide", "--sort-by=.spec.image")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		docexample.Check(t, root, "e2e-scan-imagescans-stale", out)
	})
}

// reviewedDeployment is a Deployment as /mutate leaves it: hardened and
// with resources, so only the scan policies can object to it.
const reviewedDeployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%[1]q,"namespace":%[2]q,
  "labels":{"team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}},
 "spec":{"replicas":1,"selector":{"matchLabels":{"app":%[1]q}},"template":{"metadata":{"labels":{"app":%[1]q,
   "team":"payments","owner":"alice","cost-center":"CC-1234","environment":"prod"}},
  "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
   "containers":[{"name":"app","image":%[3]q,
    "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
    "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}]}}}}`

// review sends the server an AdmissionReview of a Deployment running image
// in ns, as the API server would, and returns whether it was allowed and
// the warnings and denial message.
func (s *scanServer) review(t *testing.T, ns, name, image string) (bool, []string) {
	t.Helper()
	obj := fmt.Sprintf(reviewedDeployment, name, ns, image)
	body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "scan-" + name, "kind": map[string]any{"group": "apps", "version": "v1", "kind": "Deployment"},
		"resource":  map[string]any{"group": "apps", "version": "v1", "resource": "deployments"},
		"namespace": ns, "name": name, "operation": "CREATE", "userInfo": map[string]any{"username": "alice"},
		"object": json.RawMessage(obj),
	}})
	code, out := postTo(t, apiServerClient(t), fmt.Sprintf("https://127.0.0.1:%d/validate", s.port), body)
	if code != http.StatusOK {
		t.Fatalf("/validate: HTTP %d %s", code, out)
	}
	var rev struct {
		Response struct {
			Allowed  bool     `json:"allowed"`
			Warnings []string `json:"warnings"`
			Status   struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal([]byte(out), &rev); err != nil {
		t.Fatalf("/validate: %v: %s", err, out)
	}
	msgs := rev.Response.Warnings
	if m := rev.Response.Status.Message; m != "" {
		msgs = append(msgs, m)
	}
	return rev.Response.Allowed, msgs
}

// containsAll reports whether the messages, together, name every want.
func containsAll(msgs, want []string) bool {
	all := strings.Join(msgs, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			return false
		}
	}
	return true
}

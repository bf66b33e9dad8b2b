package ocisource

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/tollgate-dev/tollgate/test/registry"
)

// registryPolicy is a policy set's Rego: images only from one registry,
// read from the set's data.
const registryPolicy = `# METADATA
# title: Images from the corporate registry
# custom:
#   id: corp-registry
#   severity: high
#   scope: pod
package corp.registry

violation contains {"msg": sprintf("image %q is not from %s", [c.image, data.corp.settings.registry]), "path": ["spec", "containers", i, "image"]} if {
	some i, c in input.pod.spec.containers
	not startswith(c.image, concat("", [data.corp.settings.registry, "/"]))
}
`

const constraintTemplate = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8srequiredlabels}
spec:
  crd:
    spec:
      names: {kind: K8sRequiredLabels}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8srequiredlabels
        violation contains {"msg": "no labels"} if { not input.review.object.metadata.labels }
`

func policySet(registryHost string) fstest.MapFS {
	return fstest.MapFS{
		"registry/registry.rego":      {Data: []byte(registryPolicy)},
		"registry/registry_test.rego": {Data: []byte("package corp.registry_test\n")},
		"data.json":                   {Data: []byte(`{"corp":{"settings":{"registry":"` + registryHost + `"}}}`)},
		"gatekeeper/template.yaml":    {Data: []byte(constraintTemplate)},
		"config.yaml":                 {Data: []byte("apiVersion: tollgate.dev/v1alpha1\nkind: Config\npolicies:\n  corp-registry: {action: warn}\n")},
		"README.md":                   {Data: []byte("# the platform's policies\n")},
	}
}

type fixture struct {
	reg        *registry.Registry
	client     Registry
	key, other *signature.ECDSASignerVerifier
	trust      *Trust
	bodyBytes  *atomic.Int64
	hideLength *atomic.Bool
	ctx        context.Context
	repo       string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.Start(ctx, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	f := &fixture{reg: reg, ctx: ctx, bodyBytes: &atomic.Int64{}, hideLength: &atomic.Bool{}, repo: reg.Host() + "/platform/policies"}
	f.client = Registry{Transport: countingTransport{f.bodyBytes, f.hideLength}}
	var pub []byte
	if f.key, pub, err = registry.NewKey(); err != nil {
		t.Fatal(err)
	}
	if f.other, _, err = registry.NewKey(); err != nil {
		t.Fatal(err)
	}
	if f.trust, err = NewTrust(map[string][]byte{"cosign.pub": pub}); err != nil {
		t.Fatal(err)
	}
	return f
}

// push packs fsys, pushes it as tag and signs it with signer (nil: not
// signed).
func (f *fixture) push(t *testing.T, fsys fstest.MapFS, tag string, signer signature.Signer) name.Digest {
	t.Helper()
	b, err := Pack(fsys, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return f.pushBundle(t, b, tag, signer)
}

func (f *fixture) pushBundle(t *testing.T, b *Bundle, tag string, signer signature.Signer) name.Digest {
	t.Helper()
	ref, err := f.client.ParseReference("oci://" + f.repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.client.Push(f.ctx, ref, b)
	if err != nil {
		t.Fatal(err)
	}
	if signer != nil {
		if err := f.client.Sign(f.ctx, d, signer); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func (f *fixture) source(t *testing.T, tag string) *Source {
	t.Helper()
	s, err := New(Options{Ref: "oci://" + f.repo + ":" + tag, Trust: f.trust, Registry: f.client, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// countingTransport counts the response body bytes read from the
// registry, to show that reads are bounded; with hide set it drops the
// responses' Content-Length, as a registry streaming a blob chunked
// would, so the size is known only while reading.
type countingTransport struct {
	n    *atomic.Int64
	hide *atomic.Bool
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Body = countingBody{resp.Body, c.n}
		if c.hide.Load() && strings.Contains(r.URL.Path, "/blobs/") {
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
		}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestPushSignPull pushes a policy set to the real registry, signs it with
// a cosign key, and pulls it back: Rego (tests left out), data, objects
// and config, the digest pushed and the revision packed.
func TestPushSignPull(t *testing.T) {
	f := newFixture(t)
	fsys := policySet("registry.corp.example")
	b, err := Pack(fsys, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := Pack(fsys, PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.TarGz, again.TarGz) {
		t.Fatal("the same set packed twice differs")
	}
	if diff := cmp.Diff([]string{"corp"}, b.Roots); diff != "" {
		t.Errorf("roots (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"README.md", "registry/registry_test.rego"}, b.Skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	d := f.pushBundle(t, b, "v1", f.key)
	t.Logf("pushed %s (revision %s, %d bytes)", d, b.Revision, len(b.TarGz))

	set, err := Pull(f.ctx, f.client, "oci://"+f.repo+":v1", f.trust, 0)
	if err != nil {
		t.Fatal(err)
	}
	if set.Digest != d.DigestStr() || set.Revision != b.Revision {
		t.Errorf("pulled %s revision %s, pushed %s revision %s", set.Digest, set.Revision, d.DigestStr(), b.Revision)
	}
	var names []string
	for _, m := range set.Modules {
		names = append(names, m.Name)
	}
	if diff := cmp.Diff([]string{"oci/registry/registry.rego"}, names); diff != "" {
		t.Errorf("modules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"corp": map[string]any{"settings": map[string]any{"registry": "registry.corp.example"}}}, set.Data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if len(set.Objects) != 1 || set.Objects[0].Kind() != "ConstraintTemplate" || set.Objects[0].File != "oci/gatekeeper/template.yaml" {
		t.Errorf("objects: %+v", set.Objects)
	}
	if set.Config == nil || set.Config.Policies["corp-registry"].Action != "warn" {
		t.Errorf("config: %+v", set.Config)
	}
	// The manifest is OPA's bundle layout with Tollgate's artifact type.
	raw, err := remote.Get(d, f.client.remote(f.ctx)...)
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != ArtifactType || m.Config.MediaType != ConfigMediaType || m.Layers[0].MediaType != LayerMediaType || m.Annotations[AnnotationRevision] != b.Revision {
		t.Errorf("manifest: %s", raw.Manifest)
	}
	// A signature made the way `cosign sign --key` makes it verifies too.
	d2 := f.push(t, policySet("other.example"), "v2", nil)
	if err := registry.Sign(f.ctx, d2, f.key); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Verify(f.ctx, d2, f.trust); err != nil {
		t.Fatalf("a cosign signature: %v", err)
	}
}

// TestSourceRefuses follows a tag through good and bad versions: each bad
// one is refused with its reason and the last good set stays in force.
func TestSourceRefuses(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, "prod")
	good := f.push(t, policySet("registry.corp.example"), "prod", f.key)
	if ok, err := s.Poll(f.ctx); !ok || err != nil {
		t.Fatalf("first poll: %v, %v", ok, err)
	}
	if s.Digest() != good.DigestStr() {
		t.Fatalf("in force %s, want %s", s.Digest(), good.DigestStr())
	}
	if got := testutil.ToFloat64(s.info.WithLabelValues("oci://"+f.repo+":prod", good.DigestStr())); got != 1 {
		t.Fatalf("info gauge %v", got)
	}
	// Polling again changes nothing and reads no bundle.
	if ok, err := s.Poll(f.ctx); ok || err != nil {
		t.Fatalf("second poll: %v, %v", ok, err)
	}

	hugeClaim := func(t *testing.T) {
		f.pushRaw(t, "prod", []byte("small"), 1<<40)
	}
	sizeLie := func(t *testing.T) {
		big := make([]byte, 8<<20)
		_, _ = rand.Read(big)
		f.pushRaw(t, "prod", big, 1000)
	}
	tests := []struct {
		name   string
		push   func(t *testing.T)
		reason string
		want   string
	}{
		{"unsigned", func(t *testing.T) { f.push(t, policySet("unsigned.example"), "prod", nil) }, ReasonSignature, "is not signed: no signature found"},
		{"signed by another key", func(t *testing.T) { f.push(t, policySet("other.example"), "prod", f.other) }, ReasonSignature, "none by a trusted key"},
		{"corrupt layer", func(t *testing.T) {
			f.pushBundle(t, &Bundle{TarGz: []byte("this is not gzip"), DiffID: "sha256:" + strings.Repeat("0", 64), Revision: "x"}, "prod", f.key)
		}, ReasonParse, "the bundle layer is not gzip"},
		{"a layer claiming a terabyte", hugeClaim, ReasonArtifact, "the manifest says the bundle layer is 1099511627776 bytes; at most"},
		{"a layer lying about its size", sizeLie, ReasonArtifact, "the bundle layer is 8388608 bytes; at most 1000 are read"},
		{"a layer lying about its size, streamed", func(t *testing.T) {
			sizeLie(t)
			f.hideLength.Store(true)
		}, ReasonArtifact, "the bundle layer is larger than the manifest says (1000 bytes); refused after 1001 bytes"},
		{"a policy that does not compile", func(t *testing.T) {
			fsys := policySet("broken.example")
			fsys["registry/broken.rego"] = &fstest.MapFile{Data: []byte("package corp.broken\n\nviolation contains {\"msg\": m} if { m := no_such_function(input) }\n")}
			f.push(t, fsys, "prod", f.key)
		}, ReasonCompile, "undefined function no_such_function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.push(t)
			before := testutil.ToFloat64(s.failures.WithLabelValues(tc.reason))
			f.bodyBytes.Store(0)
			defer f.hideLength.Store(false)
			ok, err := s.Poll(f.ctx)
			if ok || err == nil || Reason(err) != tc.reason || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("poll: accepted %v, reason %q, error %v; want reason %q and %q", ok, Reason(err), err, tc.reason, tc.want)
			}
			t.Logf("refused (%s): %v", Reason(err), err)
			if read := f.bodyBytes.Load(); read > 64<<10 {
				t.Errorf("read %d bytes from the registry to refuse it", read)
			}
			if s.Digest() != good.DigestStr() {
				t.Errorf("in force %s, want the last good %s", s.Digest(), good.DigestStr())
			}
			if after := testutil.ToFloat64(s.failures.WithLabelValues(tc.reason)); after != before+1 {
				t.Errorf("failures{reason=%s} went from %v to %v", tc.reason, before, after)
			}
			// Polled again, it is not counted twice: an unsigned digest is
			// checked again (a signature may come), the others are not
			// read again at all.
			f.bodyBytes.Store(0)
			_, err = s.Poll(f.ctx)
			if tc.reason == ReasonSignature {
				if Reason(err) != ReasonSignature {
					t.Errorf("polled again: %v", err)
				}
			} else if err != nil || f.bodyBytes.Load() > 64 { // the registry ping's "{}" and the HEAD, no bundle
				t.Errorf("polled again: %v, %d bytes read", err, f.bodyBytes.Load())
			}
			if after := testutil.ToFloat64(s.failures.WithLabelValues(tc.reason)); after != before+1 {
				t.Errorf("polled again: failures{reason=%s} went from %v to %v", tc.reason, before, after)
			}
		})
	}

	// A new good version rolls out.
	next := f.push(t, policySet("registry2.corp.example"), "prod", f.key)
	if ok, err := s.Poll(f.ctx); !ok || err != nil || s.Digest() != next.DigestStr() {
		t.Fatalf("new version: %v, %v, in force %s", ok, err, s.Digest())
	}
	if got := s.Current().Data["corp"]; !strings.Contains(mustJSON(t, got), "registry2.corp.example") {
		t.Errorf("data in force %s", mustJSON(t, got))
	}
	if got := testutil.CollectAndCount(s.info); got != 1 {
		t.Errorf("%d info series, want the one in force", got)
	}

	// The registry goes away: the error is counted and the set stays.
	if err := f.reg.Stop(); err != nil {
		t.Fatal(err)
	}
	before := testutil.ToFloat64(s.failures.WithLabelValues(ReasonRegistry))
	if ok, err := s.Poll(f.ctx); ok || Reason(err) != ReasonRegistry {
		t.Fatalf("registry down: %v, %v", ok, err)
	} else {
		t.Logf("registry down: %v", err)
	}
	if testutil.ToFloat64(s.failures.WithLabelValues(ReasonRegistry)) != before+1 || s.Digest() != next.DigestStr() {
		t.Errorf("registry down: in force %s, failures %v", s.Digest(), testutil.ToFloat64(s.failures.WithLabelValues(ReasonRegistry)))
	}
	for name, c := range map[string]prometheus.Collector{"tollgate_policy_source_failures_total": s.failures, "tollgate_policy_source_info": s.info} {
		text, err := testutil.CollectAndFormat(c, expfmt.TypeTextPlain, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("metrics:\n%s", text)
	}
}

// pushRaw pushes blob as a signed policy set's layer under a manifest
// that claims the layer is claimed bytes, as a hostile pusher could.
func (f *fixture) pushRaw(t *testing.T, tag string, blob []byte, claimed int64) {
	t.Helper()
	ref, err := f.client.ParseReference("oci://" + f.repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	ropts := f.client.remote(f.ctx)
	config := []byte(`{"architecture":"","os":""}`)
	for _, l := range []v1.Layer{static.NewLayer(config, ConfigMediaType), static.NewLayer(blob, LayerMediaType)} {
		if err := remote.WriteLayer(ref.Context(), l, ropts...); err != nil {
			t.Fatal(err)
		}
	}
	layer := descriptor(blob, LayerMediaType)
	layer.Size = claimed
	m := v1.Manifest{SchemaVersion: 2, MediaType: manifestType, ArtifactType: ArtifactType, Config: descriptor(config, ConfigMediaType), Layers: []v1.Descriptor{layer}}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(ref, rawManifest(raw), ropts...); err != nil {
		t.Fatal(err)
	}
	d, err := f.client.Resolve(f.ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.client.Sign(f.ctx, d, f.key); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPackRefuses shows that a set that would not load is never packed,
// and the error names the file and line.
func TestPackRefuses(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want []string
	}{
		{"rego that does not parse", fstest.MapFS{"p.rego": {Data: []byte("package p\n\nviolation contains x if {\n")}}, []string{"p.rego:"}},
		{"not a policy object", fstest.MapFS{"p.rego": {Data: []byte("package p\n")}, "deploy.yaml": {Data: []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")}},
			[]string{"deploy.yaml:1: apps/v1 Deployment is not a policy object"}},
		{"malformed data", fstest.MapFS{"data.json": {Data: []byte(`{"a": [1,}`)}}, []string{"data.json"}},
		{"two configs", fstest.MapFS{
			"a.yaml": {Data: []byte("apiVersion: tollgate.dev/v1alpha1\nkind: Config\n")},
			"b.yaml": {Data: []byte("apiVersion: tollgate.dev/v1alpha1\nkind: Config\n")},
		}, []string{"2 Tollgate configs"}},
		{"a config with an unknown field", fstest.MapFS{"c.yaml": {Data: []byte("apiVersion: tollgate.dev/v1alpha1\nkind: Config\npolicy: {}\n")}}, []string{"c.yaml:1:"}},
		{"empty", fstest.MapFS{"README.md": {Data: []byte("hi")}}, []string{"holds no Rego modules, data or policy objects"}},
		{"oversized file", fstest.MapFS{"big.rego": {Data: bytes.Repeat([]byte("#"), maxFileBytes+1)}}, []string{"big.rego: over the 4194304 byte limit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Pack(tc.fsys, PackOptions{})
			if err == nil {
				t.Fatal("packed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestParseReference names what is wrong with a reference.
func TestParseReference(t *testing.T) {
	for in, want := range map[string]string{
		"oci://registry.example/team/policies:v1":                          "",
		"registry.example/team/policies@sha256:" + strings.Repeat("a", 64): "",
		"oci://team/policies:v1":                                           "name the registry host",
		"https://registry.example/x:1":                                     "want oci://HOST/REPO:TAG",
		"oci://":                                                           "want oci://",
		"oci://registry.example/Bad:v1":                                    "could not parse reference",
	} {
		_, err := Registry{}.ParseReference(in)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// A check that could not run (the cluster out of reach) does not refuse
// the set: it is counted as unchecked and tried again, and taken once the
// check runs.
func TestUncheckedSetIsTriedAgain(t *testing.T) {
	f := newFixture(t)
	d := f.push(t, policySet("registry.corp.example"), "prod", f.key)
	var down atomic.Bool
	down.Store(true)
	s, err := New(Options{Ref: "oci://" + f.repo + ":prod", Trust: f.trust, Registry: f.client, Registerer: prometheus.NewRegistry(),
		Check: func(context.Context, *Set) error {
			if down.Load() {
				return Unchecked(errors.New("listing TollgatePolicies: connection refused"))
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if ok, err := s.Poll(f.ctx); ok || Reason(err) != ReasonUnchecked || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("cluster down: %v, %v (%s)", ok, err, Reason(err))
		}
	}
	if got := testutil.ToFloat64(s.failures.WithLabelValues(ReasonUnchecked)); got != 1 {
		t.Errorf("unchecked failures %v, want 1 (the same reason for the same digest is counted once)", got)
	}
	down.Store(false)
	if ok, err := s.Poll(f.ctx); !ok || err != nil || s.Digest() != d.DigestStr() {
		t.Fatalf("cluster back: %v, %v, in force %s", ok, err, s.Digest())
	}
}

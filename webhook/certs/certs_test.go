package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tollgate-dev/tollgate/test/proc"
)

const (
	testNamespace = "tollgate-system"
	testSecret    = "tollgate-webhook-certs"
	testDNSName   = "tollgate-webhook.tollgate-system.svc"
	day           = 24 * time.Hour
	testGrace     = 2 * time.Second
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// clock is a controllable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a Rotator over a fake API server.
type env struct {
	c     client.WithWatch
	clock *clock
	opts  Options
	r     *Rotator
	logs  *proc.Buffer
}

func webhookConfigs() []client.Object {
	hooks := func(names ...string) []admissionregistrationv1.WebhookClientConfig {
		out := make([]admissionregistrationv1.WebhookClientConfig, len(names))
		for i, n := range names {
			path := "/" + n
			out[i] = admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: testNamespace, Name: "tollgate-webhook", Path: &path}}
		}
		return out
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tollgate"}}
	for _, cc := range hooks("mutate-pods", "mutate-deployments") {
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{Name: "m.tollgate.dev", ClientConfig: cc})
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tollgate"}}
	for _, cc := range hooks("validate-pods", "validate-deployments") {
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{Name: "v.tollgate.dev", ClientConfig: cc})
	}
	return []client.Object{m, v}
}

// newEnv builds an env over objs; funcs, when given, intercept client calls.
func newEnv(t *testing.T, objs []client.Object, funcs *interceptor.Funcs, mutate ...func(*Options)) *env {
	t.Helper()
	b := fake.NewClientBuilder().WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	e := &env{c: b.Build(), clock: &clock{now: t0}, logs: &proc.Buffer{}}
	e.opts = Options{
		Client:             e.c,
		Namespace:          testNamespace,
		SecretName:         testSecret,
		DNSNames:           []string{testDNSName},
		IPAddresses:        []net.IP{net.ParseIP("127.0.0.1")},
		CertDir:            t.TempDir(),
		PublishGrace:       testGrace,
		MutatingWebhooks:   []string{"tollgate"},
		ValidatingWebhooks: []string{"tollgate"},
		Now:                e.clock.Now,
		Logger:             slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mutate {
		m(&e.opts)
	}
	r, err := New(e.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	return e
}

func (e *env) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	sec := &corev1.Secret{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: testNamespace, Name: testSecret}, sec); err != nil {
		t.Fatal(err)
	}
	return sec
}

func (e *env) reconcile(t *testing.T) {
	t.Helper()
	if err := e.r.Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

// configVersions returns the resourceVersion of every webhook configuration.
func (e *env) configVersions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	var ml admissionregistrationv1.MutatingWebhookConfigurationList
	var vl admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := e.c.List(context.Background(), &ml); err != nil {
		t.Fatal(err)
	}
	if err := e.c.List(context.Background(), &vl); err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Items {
		out["mutating/"+m.Name] = m.ResourceVersion
	}
	for _, v := range vl.Items {
		out["validating/"+v.Name] = v.ResourceVersion
	}
	return out
}

// state is a verified view of the Secret.
type state struct {
	secret *corev1.Secret
	ca     *x509.Certificate
	bundle []*x509.Certificate
	leaf   *x509.Certificate
}

func (s state) bundleNames() []string {
	var out []string
	for _, c := range s.bundle {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// check verifies everything that must hold after any successful Reconcile:
// the CA key matches the CA, the CA leads the bundle, the serving certificate
// verifies against the bundle for every SAN, and every webhook of every
// existing configuration carries the bundle.
func (e *env) check(t *testing.T) state {
	t.Helper()
	sec := e.secret(t)
	ca, _, err := parseCA(sec.Data[CACertKey], sec.Data[CAKeyKey])
	if err != nil {
		t.Fatalf("CA: %v", err)
	}
	bundle, err := parseCerts(sec.Data[CABundleKey])
	if err != nil || len(bundle) == 0 {
		t.Fatalf("bundle: %d certificates, %v", len(bundle), err)
	}
	if !bundle[0].Equal(ca) {
		t.Errorf("bundle starts with %s, want the signing CA %s", bundle[0].Subject.CommonName, ca.Subject.CommonName)
	}
	pair, err := tls.X509KeyPair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatalf("serving pair: %v", err)
	}
	roots := x509.NewCertPool()
	for _, c := range bundle {
		roots.AddCert(c)
	}
	for _, name := range []string{testDNSName, "127.0.0.1"} {
		opts := x509.VerifyOptions{DNSName: name, Roots: roots, CurrentTime: e.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if _, err := pair.Leaf.Verify(opts); err != nil {
			t.Errorf("serving certificate for %s: %v", name, err)
		}
	}
	var ml admissionregistrationv1.MutatingWebhookConfigurationList
	var vl admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := e.c.List(context.Background(), &ml); err != nil {
		t.Fatal(err)
	}
	if err := e.c.List(context.Background(), &vl); err != nil {
		t.Fatal(err)
	}
	var got []admissionregistrationv1.WebhookClientConfig
	for _, m := range ml.Items {
		for _, w := range m.Webhooks {
			got = append(got, w.ClientConfig)
		}
	}
	for _, v := range vl.Items {
		for _, w := range v.Webhooks {
			got = append(got, w.ClientConfig)
		}
	}
	for i, cc := range got {
		if !bytes.Equal(cc.CABundle, sec.Data[CABundleKey]) {
			t.Errorf("webhook %d (path %s): caBundle differs from the secret's", i, *cc.Service.Path)
		}
	}
	return state{secret: sec, ca: ca, bundle: bundle, leaf: pair.Leaf}
}

func TestOptionsValidate(t *testing.T) {
	valid := func() Options {
		return Options{
			Client:     fake.NewClientBuilder().Build(),
			Namespace:  testNamespace,
			SecretName: testSecret,
			DNSNames:   []string{testDNSName},
			CertDir:    "/tmp/certs",
		}
	}
	tests := []struct {
		name   string
		mutate func(*Options)
		field  string // empty: valid
	}{
		{"valid with defaults", func(*Options) {}, ""},
		{"IP only", func(o *Options) { o.DNSNames, o.IPAddresses = nil, []net.IP{net.IPv4(127, 0, 0, 1)} }, ""},
		{"no client", func(o *Options) { o.Client = nil }, "Client"},
		{"no namespace", func(o *Options) { o.Namespace = "" }, "Namespace"},
		{"no secret", func(o *Options) { o.SecretName = "" }, "SecretName"},
		{"no SANs", func(o *Options) { o.DNSNames = nil }, "DNSNames"},
		{"empty DNS name", func(o *Options) { o.DNSNames = []string{"a", ""} }, "DNSNames[1]"},
		{"no cert dir", func(o *Options) { o.CertDir = "" }, "CertDir"},
		{"negative CA validity", func(o *Options) { o.CAValidity = -time.Hour }, "CAValidity"},
		{"negative cert validity", func(o *Options) { o.CertValidity = -time.Hour }, "CertValidity"},
		{"cert outlives default CA", func(o *Options) { o.CertValidity = 400 * day }, "CertValidity"},
		{"cert outlives CA", func(o *Options) { o.CAValidity = 30 * day }, "CertValidity"},
		{"renew fraction 1", func(o *Options) { o.RenewBefore = 1 }, "RenewBefore"},
		{"renew fraction negative", func(o *Options) { o.RenewBefore = -0.5 }, "RenewBefore"},
		{"negative grace", func(o *Options) { o.PublishGrace = -time.Second }, "PublishGrace"},
		{"empty mutating name", func(o *Options) { o.MutatingWebhooks = []string{""} }, "MutatingWebhooks[0]"},
		{"empty validating name", func(o *Options) { o.ValidatingWebhooks = []string{"x", ""} }, "ValidatingWebhooks[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.mutate(&o)
			_, err := New(o)
			var field string
			if oe := (*OptionError)(nil); errors.As(err, &oe) {
				field = oe.Field
				if !strings.Contains(err.Error(), tc.field) {
					t.Errorf("error %q does not name %s", err, tc.field)
				}
			} else if err != nil {
				t.Fatalf("New: %v is not an *OptionError", err)
			}
			if diff := cmp.Diff(tc.field, field); diff != "" {
				t.Errorf("invalid field (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReconcileFirstPass(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	before := e.configVersions(t)
	e.reconcile(t)
	s := e.check(t)

	if s.secret.Type != corev1.SecretTypeTLS {
		t.Errorf("secret type %q, want %q", s.secret.Type, corev1.SecretTypeTLS)
	}
	if got, want := s.secret.Annotations[PublishedAtAnnotation], t0.Format(time.RFC3339); got != want {
		t.Errorf("%s = %q, want %q", PublishedAtAnnotation, got, want)
	}
	if len(s.bundle) != 1 {
		t.Errorf("bundle holds %d certificates, want 1", len(s.bundle))
	}
	if !s.ca.IsCA || s.ca.KeyUsage&x509.KeyUsageCertSign == 0 || s.ca.CheckSignatureFrom(s.ca) != nil {
		t.Errorf("CA is not a self-signed signing CA")
	}
	if err := s.leaf.CheckSignatureFrom(s.ca); err != nil {
		t.Errorf("serving certificate not signed by the CA: %v", err)
	}
	for name, c := range map[string]*x509.Certificate{"CA": s.ca, "serving": s.leaf} {
		if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", name, c.PublicKey)
		}
	}
	gotSANs := []string{s.leaf.DNSNames[0], s.leaf.IPAddresses[0].String()}
	if diff := cmp.Diff([]string{testDNSName, "127.0.0.1"}, gotSANs); diff != "" {
		t.Errorf("SANs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, s.leaf.ExtKeyUsage); diff != "" {
		t.Errorf("ext key usage (-want +got):\n%s", diff)
	}
	if got, want := s.leaf.NotAfter, t0.Add(DefaultCertValidity); !got.Equal(want) {
		t.Errorf("serving NotAfter %s, want %s", got, want)
	}
	if got, want := s.ca.NotAfter, t0.Add(DefaultCAValidity); !got.Equal(want) {
		t.Errorf("CA NotAfter %s, want %s", got, want)
	}
	after := e.configVersions(t)
	for k := range before {
		if before[k] == after[k] {
			t.Errorf("%s was not patched", k)
		}
	}

	// A second pass, an hour later, writes nothing.
	e.clock.Advance(time.Hour)
	e.reconcile(t)
	if got := e.secret(t).ResourceVersion; got != s.secret.ResourceVersion {
		t.Errorf("secret rewritten: resourceVersion %s -> %s", s.secret.ResourceVersion, got)
	}
	if diff := cmp.Diff(after, e.configVersions(t)); diff != "" {
		t.Errorf("webhook configurations rewritten (-before +after):\n%s", diff)
	}
}

func TestServingRenewalKeepsCA(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	e.reconcile(t)
	s0 := e.check(t)
	versions := e.configVersions(t)

	// 59 of 90 days: more than a third left, nothing to do.
	e.clock.Advance(59 * day)
	e.reconcile(t)
	if got := e.secret(t).ResourceVersion; got != s0.secret.ResourceVersion {
		t.Fatalf("secret rewritten outside the renewal window")
	}

	// 61 days: inside the window.
	e.clock.Advance(2 * day)
	e.reconcile(t)
	s1 := e.check(t)
	if s1.leaf.Equal(s0.leaf) {
		t.Fatal("serving certificate not renewed inside its window")
	}
	if !s1.ca.Equal(s0.ca) || !bytes.Equal(s1.secret.Data[CABundleKey], s0.secret.Data[CABundleKey]) {
		t.Error("CA or bundle changed on a serving renewal")
	}
	if diff := cmp.Diff(versions, e.configVersions(t)); diff != "" {
		t.Errorf("webhook configurations patched on a serving renewal (-before +after):\n%s", diff)
	}
}

func TestRotateCAWaitsForPublishGrace(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	e.reconcile(t)
	s0 := e.check(t)

	e.clock.Advance(time.Hour)
	if err := e.r.RotateCA(context.Background()); err != nil {
		t.Fatal(err)
	}
	s1 := e.check(t)
	if s1.ca.Equal(s0.ca) {
		t.Fatal("RotateCA kept the CA")
	}
	if diff := cmp.Diff([]string{s1.ca.Subject.CommonName, s0.ca.Subject.CommonName}, s1.bundleNames()); diff != "" {
		t.Errorf("bundle after rotation (-want +got):\n%s", diff)
	}
	if !s1.leaf.Equal(s0.leaf) {
		t.Error("serving certificate reissued before the new CA was published for PublishGrace")
	}

	// Within the grace: still the old certificate, nothing written.
	e.clock.Advance(testGrace / 2)
	e.reconcile(t)
	if got := e.secret(t).ResourceVersion; got != s1.secret.ResourceVersion {
		t.Error("secret rewritten during PublishGrace")
	}

	// Grace over: issued from the new CA, old CA still trusted.
	e.clock.Advance(testGrace / 2)
	e.reconcile(t)
	s2 := e.check(t)
	if err := s2.leaf.CheckSignatureFrom(s1.ca); err != nil {
		t.Errorf("serving certificate not from the new CA after PublishGrace: %v", err)
	}
	if diff := cmp.Diff(s1.bundleNames(), s2.bundleNames()); diff != "" {
		t.Errorf("bundle changed (-want +got):\n%s", diff)
	}
}

func TestCALifecycle(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	e.reconcile(t)
	ca1 := e.check(t).ca

	// Day 240: the serving certificate has long expired and is replaced at
	// once; the CA has more than a third of its year left.
	e.clock.Advance(240 * day)
	e.reconcile(t)
	s := e.check(t)
	if !s.ca.Equal(ca1) {
		t.Fatal("CA rotated before its renewal window")
	}

	// Day 250: CA renewal; the old CA stays in the bundle and keeps signing
	// the served certificate until the grace has passed.
	e.clock.Advance(10 * day)
	e.reconcile(t)
	s = e.check(t)
	ca2 := s.ca
	if ca2.Equal(ca1) {
		t.Fatal("CA not rotated inside its renewal window")
	}
	if diff := cmp.Diff([]string{ca2.Subject.CommonName, ca1.Subject.CommonName}, s.bundleNames()); diff != "" {
		t.Errorf("bundle (-want +got):\n%s", diff)
	}
	if s.leaf.CheckSignatureFrom(ca1) != nil {
		t.Error("serving certificate moved to the new CA before PublishGrace")
	}
	e.clock.Advance(testGrace)
	e.reconcile(t)
	if s = e.check(t); s.leaf.CheckSignatureFrom(ca2) != nil {
		t.Error("serving certificate not moved to the new CA after PublishGrace")
	}

	// Day 364: the old CA is still valid and still in the bundle.
	e.clock.Advance(114 * day)
	e.reconcile(t)
	if s = e.check(t); len(s.bundle) != 2 {
		t.Errorf("bundle holds %d CAs on day 364, want 2", len(s.bundle))
	}

	// Day 366: the old CA has expired and is dropped everywhere.
	e.clock.Advance(2 * day)
	e.reconcile(t)
	s = e.check(t)
	if diff := cmp.Diff([]string{ca2.Subject.CommonName}, s.bundleNames()); diff != "" {
		t.Errorf("bundle after the old CA expired (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.logs.String(), "dropping expired CA from bundle") {
		t.Error("dropping the expired CA was not logged")
	}
}

func TestRepairsBadSecret(t *testing.T) {
	otherCA, otherKey, err := newCA(t0, day)
	if err != nil {
		t.Fatal(err)
	}
	ca, caKey, err := parseCA(otherCA, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, foreignKey, err := issue(ca, caKey, []string{testDNSName}, nil, t0, day)
	if err != nil {
		t.Fatal(err)
	}
	badKey := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	tests := []struct {
		name      string
		corrupt   func(d map[string][]byte)
		log       string // a log line must say what was wrong
		newCA     bool
		newLeaf   bool
		bundleLen int
	}{{
		name:    "garbage serving cert",
		corrupt: func(d map[string][]byte) { d[corev1.TLSCertKey] = []byte("not a certificate") },
		log:     "serving certificate in secret is invalid", newLeaf: true, bundleLen: 1,
	}, {
		name:    "serving key does not match",
		corrupt: func(d map[string][]byte) { d[corev1.TLSPrivateKeyKey] = d[CAKeyKey] },
		log:     "serving certificate in secret is invalid", newLeaf: true, bundleLen: 1,
	}, {
		name:    "serving cert from a foreign CA",
		corrupt: func(d map[string][]byte) { d[corev1.TLSCertKey], d[corev1.TLSPrivateKeyKey] = foreignCert, foreignKey },
		log:     "serving certificate does not verify against the CA bundle", newLeaf: true, bundleLen: 1,
	}, {
		// The old CA stays trusted through the bundle, so the serving
		// certificate it signed is kept until the new CA's grace has passed.
		name:    "garbage CA key",
		corrupt: func(d map[string][]byte) { d[CAKeyKey] = badKey },
		log:     "CA in secret is invalid", newCA: true, bundleLen: 2,
	}, {
		name:    "CA key does not match",
		corrupt: func(d map[string][]byte) { d[CAKeyKey] = d[corev1.TLSPrivateKeyKey] },
		log:     "does not match", newCA: true, bundleLen: 2,
	}, {
		name:    "garbage CA cert",
		corrupt: func(d map[string][]byte) { d[CACertKey] = []byte("junk") },
		log:     "CA in secret is invalid", newCA: true, bundleLen: 2,
	}, {
		name:    "CA cert is the serving cert",
		corrupt: func(d map[string][]byte) { d[CACertKey] = d[corev1.TLSCertKey] },
		log:     "not a CA certificate", newCA: true, bundleLen: 2,
	}, {
		name:    "garbage bundle",
		corrupt: func(d map[string][]byte) { d[CABundleKey] = []byte("junk") },
		log:     "dropping unparsable CA bundle entries", bundleLen: 1,
	}, {
		name:    "bundle lacks the CA",
		corrupt: func(d map[string][]byte) { d[CABundleKey] = otherCA },
		log:     "published CA bundle", bundleLen: 2,
	}, {
		name:    "everything gone",
		corrupt: func(d map[string][]byte) { clear(d) },
		log:     "created CA", newCA: true, newLeaf: true, bundleLen: 1,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, webhookConfigs(), nil)
			e.reconcile(t)
			s0 := e.check(t)
			sec := s0.secret.DeepCopy()
			tc.corrupt(sec.Data)
			if err := e.c.Update(context.Background(), sec); err != nil {
				t.Fatal(err)
			}

			e.reconcile(t)
			s1 := e.check(t)
			if !strings.Contains(e.logs.String(), tc.log) {
				t.Errorf("no log line containing %q in:\n%s", tc.log, e.logs)
			}
			if got := !s1.ca.Equal(s0.ca); got != tc.newCA {
				t.Errorf("new CA = %v, want %v", got, tc.newCA)
			}
			if got := !s1.leaf.Equal(s0.leaf); got != tc.newLeaf {
				t.Errorf("new serving certificate = %v, want %v", got, tc.newLeaf)
			}
			if len(s1.bundle) != tc.bundleLen {
				t.Errorf("bundle holds %v, want %d certificates", s1.bundleNames(), tc.bundleLen)
			}

			// Repaired state is stable.
			e.reconcile(t)
			if got := e.secret(t).ResourceVersion; got != s1.secret.ResourceVersion {
				t.Error("secret rewritten again after the repair")
			}
		})
	}
}

func TestMissingWebhookConfigurationIsSkipped(t *testing.T) {
	objs := webhookConfigs()
	e := newEnv(t, objs[:1], nil) // no ValidatingWebhookConfiguration yet
	e.reconcile(t)
	s := e.check(t)
	if !strings.Contains(e.logs.String(), "webhook configuration not found, skipping") {
		t.Error("skipping the missing configuration was not logged")
	}

	// Created later without a bundle: patched on the next pass, Secret untouched.
	if err := e.c.Create(context.Background(), objs[1]); err != nil {
		t.Fatal(err)
	}
	e.reconcile(t)
	e.check(t)
	if got := e.secret(t).ResourceVersion; got != s.secret.ResourceVersion {
		t.Error("secret rewritten when only a configuration needed the bundle")
	}
}

func TestReconcileConflictRetries(t *testing.T) {
	var race atomic.Bool
	funcs := &interceptor.Funcs{
		// Another writer updates the Secret right after we read it.
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			if sec, ok := obj.(*corev1.Secret); ok && race.CompareAndSwap(true, false) {
				other := sec.DeepCopy()
				metav1.SetMetaDataLabel(&other.ObjectMeta, "touched", "yes")
				return c.Update(ctx, other)
			}
			return nil
		},
	}
	e := newEnv(t, webhookConfigs(), funcs)
	e.reconcile(t)
	s0 := e.check(t)

	e.clock.Advance(61 * day)
	race.Store(true)
	if err := e.r.Reconcile(context.Background()); !apierrors.IsConflict(err) {
		t.Fatalf("Reconcile over a concurrent write: got %v, want a conflict", err)
	}
	if !e.check(t).leaf.Equal(s0.leaf) {
		t.Fatal("conflicting write went through")
	}
	e.reconcile(t)
	if e.check(t).leaf.Equal(s0.leaf) {
		t.Error("retry did not renew the serving certificate")
	}
}

func TestCABundle(t *testing.T) {
	e := newEnv(t, nil, nil)
	if _, err := e.r.CABundle(context.Background()); !apierrors.IsNotFound(err) {
		t.Errorf("CABundle before the first pass: got %v, want not found", err)
	}
	e.reconcile(t)
	got, err := e.r.CABundle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, e.secret(t).Data[CABundleKey]) {
		t.Error("CABundle differs from the secret's bundle")
	}
}

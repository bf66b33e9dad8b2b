package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/test/proc"
)

func (e *env) sync(t *testing.T) {
	t.Helper()
	if err := e.r.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// stat returns the FileInfo of every file in CertDir, by name.
func (e *env) stat(t *testing.T) map[string]fs.FileInfo {
	t.Helper()
	entries, err := os.ReadDir(e.opts.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fs.FileInfo{}
	for _, de := range entries {
		fi, err := os.Stat(filepath.Join(e.opts.CertDir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[de.Name()] = fi
	}
	return out
}

// rewritten lists the files whose inode changed between two stat calls.
func rewritten(before, after map[string]fs.FileInfo) []string {
	var out []string
	for _, name := range []string{BundleFile, KeyFile, CertFile} {
		if !os.SameFile(before[name], after[name]) {
			out = append(out, name)
		}
	}
	return out
}

func TestSync(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	ctx := context.Background()

	if err := e.r.Sync(ctx); !apierrors.IsNotFound(err) {
		t.Errorf("Sync without a secret: got %v, want not found", err)
	}
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret}, Type: corev1.SecretTypeTLS}
	if err := e.c.Create(ctx, empty); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Sync(ctx); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("Sync with an empty secret: got %v, want ErrNoCertificate", err)
	}
	if err := e.r.Check(nil); err == nil {
		t.Error("Check passed with an empty CertDir")
	}

	e.reconcile(t) // fills the existing, empty secret
	e.sync(t)
	sec := e.secret(t)
	want := map[string]struct {
		key  string
		mode fs.FileMode
	}{CertFile: {corev1.TLSCertKey, 0o644}, KeyFile: {corev1.TLSPrivateKeyKey, 0o600}, BundleFile: {CABundleKey, 0o644}}
	st0 := e.stat(t)
	if len(st0) != len(want) {
		t.Errorf("CertDir holds %d files, want %d (leftover temporary files?)", len(st0), len(want))
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(e.opts.CertDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, sec.Data[w.key]) {
			t.Errorf("%s differs from secret key %s", name, w.key)
		}
		if mode := st0[name].Mode().Perm(); mode != w.mode {
			t.Errorf("%s mode %v, want %v", name, mode, w.mode)
		}
	}
	if err := e.r.Check(nil); err != nil {
		t.Errorf("Check after Sync: %v", err)
	}

	// Unchanged secret: nothing rewritten.
	e.sync(t)
	if diff := cmp.Diff([]string(nil), rewritten(st0, e.stat(t))); diff != "" {
		t.Errorf("rewritten without a change (-want +got):\n%s", diff)
	}

	// Serving renewal: the pair is rewritten, the bundle is not.
	e.clock.Advance(61 * day)
	e.reconcile(t)
	e.sync(t)
	st1 := e.stat(t)
	if diff := cmp.Diff([]string{KeyFile, CertFile}, rewritten(st0, st1)); diff != "" {
		t.Errorf("rewritten after a serving renewal (-want +got):\n%s", diff)
	}
	if len(st1) != len(want) {
		t.Errorf("CertDir holds %d files, want %d (leftover temporary files?)", len(st1), len(want))
	}

	// Readiness follows the clock: an expired certificate is not ready.
	e.clock.Advance(DefaultCertValidity + time.Second)
	if err := e.r.Check(nil); err == nil {
		t.Error("Check passed with an expired certificate")
	}
}

// serve runs an HTTPS server on 127.0.0.1 that loads its certificate from
// dir on every handshake, the way certwatcher serves the latest files.
func serve(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		TLSConfig: &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
			return &c, err
		}},
		ErrorLog: log.New(io.Discard, "", 0), // failed handshakes are expected
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// handshake calls addr trusting only bundle, as the API server does with a
// webhook's caBundle, and returns the issuer of the served certificate.
func handshake(e *env, addr, serverName string, bundle []byte) (string, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return "", errors.New("empty bundle")
	}
	hc := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: serverName, Time: e.clock.Now},
	}}
	resp, err := hc.Get("https://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return resp.TLS.PeerCertificates[0].Issuer.CommonName, nil
}

// publishedBundle returns the caBundle the API server would use.
func (e *env) publishedBundle(t *testing.T) []byte {
	t.Helper()
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Name: "tollgate"}, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Webhooks[0].ClientConfig.CABundle
}

func TestTLSHandshakeAcrossRotation(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	e.reconcile(t)
	e.sync(t)
	addr := serve(t, e.opts.CertDir)
	ca1 := e.check(t).ca.Subject.CommonName
	bundle1 := e.publishedBundle(t)

	expect := func(step, serverName string, bundle []byte, wantIssuer string) {
		t.Helper()
		issuer, err := handshake(e, addr, serverName, bundle)
		switch {
		case wantIssuer == "" && err == nil:
			t.Errorf("%s (%q): handshake succeeded, want it to fail", step, serverName)
		case wantIssuer != "" && err != nil:
			t.Errorf("%s (%q): %v", step, serverName, err)
		case issuer != wantIssuer:
			t.Errorf("%s (%q): served certificate issued by %q, want %q", step, serverName, issuer, wantIssuer)
		}
	}
	for _, name := range []string{"", testDNSName} { // "" verifies the IP SAN
		expect("initial", name, bundle1, ca1)
	}
	expect("wrong name", "other.example.com", bundle1, "")

	e.clock.Advance(time.Hour)
	if err := e.r.RotateCA(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.sync(t)
	ca2 := e.check(t).ca.Subject.CommonName
	bundle2 := e.publishedBundle(t)
	// An API server still holding the old bundle, and one with the new.
	expect("during grace, old bundle", testDNSName, bundle1, ca1)
	expect("during grace, new bundle", testDNSName, bundle2, ca1)

	e.clock.Advance(testGrace)
	e.reconcile(t)
	e.sync(t)
	e.check(t)
	for _, name := range []string{"", testDNSName} {
		expect("after grace", name, bundle2, ca2)
	}
	// Why the grace exists: the old bundle alone no longer verifies.
	expect("after grace, old bundle", testDNSName, bundle1, "")
}

func TestCertwatcherReloadsSyncedFiles(t *testing.T) {
	e := newEnv(t, webhookConfigs(), nil)
	e.reconcile(t)
	e.sync(t)
	w, err := certwatcher.New(filepath.Join(e.opts.CertDir, CertFile), filepath.Join(e.opts.CertDir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	w = w.WithWatchInterval(50 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Start(ctx) }()

	e.clock.Advance(61 * day)
	e.reconcile(t)
	e.sync(t)
	want := e.check(t).leaf
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := w.GetCertificate(nil)
		if err == nil && c.Leaf != nil && c.Leaf.Equal(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("certwatcher did not load the renewed certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replica returns a second replica on the same API server and clock, with
// its own CertDir and logs.
func (e *env) replica(t *testing.T) *env {
	t.Helper()
	o := *e
	o.logs = &proc.Buffer{}
	o.opts.CertDir = t.TempDir()
	o.opts.Logger = slog.New(slog.NewTextHandler(o.logs, nil))
	r, err := New(o.opts)
	if err != nil {
		t.Fatal(err)
	}
	o.r = r
	return &o
}

func TestRun(t *testing.T) {
	leader := newEnv(t, webhookConfigs(), nil)
	follower := leader.replica(t)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(e *env, isLeader bool) {
		wg.Go(func() { e.r.Run(ctx, func() bool { return isLeader }, 10*time.Millisecond) })
	}

	run(follower, false)
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	if err := follower.r.WaitReady(short); err == nil {
		t.Error("follower ready without a leader")
	}
	cancelShort()

	run(leader, true)
	for _, e := range []*env{leader, follower} {
		ready, cancelReady := context.WithTimeout(ctx, 10*time.Second)
		if err := e.r.WaitReady(ready); err != nil {
			t.Error(err)
		}
		cancelReady()
	}
	cancel()
	wg.Wait()
	if !strings.Contains(follower.logs.String(), "syncing webhook certificate files failed") {
		t.Error("follower did not log the missing certificate")
	}
}

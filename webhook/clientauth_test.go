package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testCA is a CA that signs client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// client issues a client certificate with a common name and DNS names.
func (ca *testCA) client(t *testing.T, cn string, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// authServer serves h behind ClientAuth over TLS, as tollgate serve does.
func authServer(t *testing.T, auth *ClientAuth, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(auth.Wrap(WebhookValidate, h))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	auth.TLSConfig(srv.TLS)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func callWith(t *testing.T, srv *httptest.Server, cert *tls.Certificate, body []byte) (int, string) {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	if cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post(srv.URL+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// TestClientAuth: only a certificate from the client CA naming an allowed
// client reaches the reviewer; others get 401 or 403, are not reviewed,
// not logged, and counted. The CA file replaced on disk is used at once.
func TestClientAuth(t *testing.T) {
	f := newFixture(t, nil, nil)
	ca, other := newTestCA(t, "client-ca"), newTestCA(t, "other-ca")
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var clock sync.Mutex
	auth, err := NewClientAuth(ClientAuthOptions{CAFile: caFile, Names: []string{"kube-apiserver", "apiserver.example"}, Metrics: f.metrics,
		Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := authServer(t, auth, f.validate)
	body := review(t, "CREATE", "Pod", "shop", "p", privilegedPod, "")
	good, bySAN := ca.client(t, "kube-apiserver"), ca.client(t, "x", "apiserver.example")
	wrongName, wrongCA := ca.client(t, "system:admin"), other.client(t, "kube-apiserver")
	tests := []struct {
		name   string
		cert   *tls.Certificate
		code   int
		reason string
		says   string
	}{
		{"no certificate", nil, http.StatusUnauthorized, refusedNoCertificate, "a client certificate signed by the configured client CA is required"},
		{"another CA", &wrongCA, http.StatusForbidden, refusedUntrusted, "does not verify against the client CA"},
		{"right CA, wrong name", &wrongName, http.StatusForbidden, refusedName, "names CN=system:admin, none of them an allowed client name"},
		{"allowed common name", &good, http.StatusOK, "", ""},
		{"allowed DNS name", &bySAN, http.StatusOK, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.log.Len()
			code, text := callWith(t, srv, tt.cert, body)
			if code != tt.code || !strings.Contains(text, tt.says) {
				t.Fatalf("HTTP %d %q; want %d saying %q", code, text, tt.code, tt.says)
			}
			logged := f.log.String()[before:]
			if tt.code != http.StatusOK {
				if logged != "" {
					t.Errorf("a refused request was logged: %s", logged)
				}
				if n := testutil.ToFloat64(f.metrics.unauthenticated.WithLabelValues(WebhookValidate, tt.reason)); n != 1 {
					t.Errorf("unauthenticated{%s} = %v", tt.reason, n)
				}
				return
			}
			if !strings.Contains(logged, `"authenticated":true`) {
				t.Errorf("the decision is not logged as authenticated: %s", logged)
			}
		})
	}
	if n := testutil.CollectAndCount(f.metrics.violations); n == 0 {
		t.Error("no violation counted for the authenticated requests")
	}

	// The other CA replaces the file: its certificate is accepted at the
	// next check, the old CA's no longer.
	if err := os.WriteFile(caFile, other.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Lock()
	now = now.Add(2 * time.Second)
	clock.Unlock()
	if code, text := callWith(t, srv, &wrongCA, body); code != http.StatusOK {
		t.Errorf("after the CA changed: HTTP %d %s", code, text)
	}
	if code, _ := callWith(t, srv, &good, body); code != http.StatusForbidden {
		t.Errorf("the replaced CA still admits: HTTP %d", code)
	}
	// A CA file that no longer parses keeps the one in force.
	if err := os.WriteFile(caFile, []byte("not a certificate, and longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Lock()
	now = now.Add(2 * time.Second)
	clock.Unlock()
	if code, _ := callWith(t, srv, &wrongCA, body); code != http.StatusOK {
		t.Errorf("a broken CA file dropped the CA in force: HTTP %d", code)
	}
	if n := testutil.ToFloat64(f.metrics.caReloads.WithLabelValues("error")); n != 1 {
		t.Errorf("failed reloads %v, want 1", n)
	}
}

// TestUnauthenticatedDecisions: without client authentication the server
// answers, and logs the decision as unauthenticated.
func TestUnauthenticatedDecisions(t *testing.T) {
	f := newFixture(t, nil, nil)
	var auth *ClientAuth
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(review(t, "CREATE", "Pod", "shop", "p", privilegedPod, "")))
	req.Header.Set("Content-Type", "application/json")
	auth.Wrap(WebhookValidate, f.validate).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(f.log.String(), `"authenticated":false`) {
		t.Errorf("HTTP %d, log %s", rec.Code, f.log)
	}
}

// TestClientAuthOptions: bad options say what to fix.
func TestClientAuthOptions(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(empty, []byte("-----BEGIN NOTHING-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts ClientAuthOptions
		want string
	}{
		{"no CA", ClientAuthOptions{Names: []string{"x"}}, "the client CA file is required (--client-ca-file)"},
		{"no names", ClientAuthOptions{CAFile: empty}, "at least one allowed client name is required (--client-name)"},
		{"blank name", ClientAuthOptions{CAFile: empty, Names: []string{"a", " "}}, "client name 2 is empty"},
		{"missing file", ClientAuthOptions{CAFile: filepath.Join(dir, "nope"), Names: []string{"x"}}, "no such file"},
		{"no certificate in it", ClientAuthOptions{CAFile: empty, Names: []string{"x"}}, "no PEM certificate in it"},
	} {
		if _, err := NewClientAuth(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.name, err, tt.want)
		}
	}
}

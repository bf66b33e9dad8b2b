package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// apiServerClient is an HTTPS client that presents what kube-apiserver
// presents to the webhooks (a certificate from the cluster's webhook
// client CA named kube-apiserver) and a bearer token allowed to get
// /metrics: what the tests that call a server directly need.
func apiServerClient(t *testing.T) *http.Client {
	t.Helper()
	cert, err := env.cluster.WebhookClientCA().TLSCertificate(cluster.WebhookClientName)
	if err != nil {
		t.Fatal(err)
	}
	return clientWith(&cert, metricsToken(t, "tollgate-e2e-scraper", true))
}

// clientWith presents cert (nil: none) and token (empty: none).
func clientWith(cert *tls.Certificate, token string) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the tests' own servers
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: bearer{token: token, next: &http.Transport{TLSClientConfig: cfg}}, Timeout: 30 * time.Second}
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

var tokens sync.Map // service account name → token

// metricsToken returns a token of a ServiceAccount in default, bound (when
// allowed) to a ClusterRole that may get /metrics, as the chart's
// Prometheus ServiceAccount is.
func metricsToken(t *testing.T, name string, allowed bool) string {
	t.Helper()
	if tok, ok := tokens.Load(name); ok {
		return tok.(string)
	}
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if err := env.client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if allowed {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "default"}}}
		if err := env.client.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if err := env.client.Create(ctx, binding); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	tr, err := env.kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tokens.Store(name, tr.Status.Token)
	return tr.Status.Token
}

func ptrTo[T any](v T) *T { return &v }

// directReview is an AdmissionReview of a privileged pod, as a forger
// would send it straight to the webhook.
func directReview(uid string) []byte {
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": uid, "kind": map[string]any{"version": "v1", "kind": "Pod"}, "resource": map[string]any{"version": "v1", "resource": "pods"},
		"namespace": "probe", "name": uid, "operation": "CREATE", "userInfo": map[string]any{"username": "mallory"},
		"object": json.RawMessage(privilegedPod("probe", uid)),
	}})
	return b
}

func postTo(t *testing.T, hc *http.Client, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestAdmissionIsAuthenticated: what the API server sends is reviewed
// and logged as authenticated, from the client name its certificate
// carries.
func TestAdmissionIsAuthenticated(t *testing.T) {
	_, stderr, err := env.cluster.KubectlWithStdin(context.Background(), privilegedPod("probe", "mtls-check"), "apply", "--dry-run=server", "-f", "-")
	if err == nil || !strings.Contains(stderr, "pss-baseline-privileged") {
		t.Fatalf("a privileged pod was not denied: %v %s", err, stderr)
	}
	eventually(t, 10*time.Second, func() error {
		for line := range strings.SplitSeq(env.decision.String(), "\n") {
			if strings.Contains(line, `"name":"mtls-check"`) {
				if !strings.Contains(line, `"authenticated":true,"client":"kube-apiserver"`) {
					return fmt.Errorf("logged without the caller: %s", line)
				}
				return nil
			}
		}
		return fmt.Errorf("no decision logged for mtls-check")
	})
}

// TestForgedReviewsAreRefused: a review POSTed straight to the webhook
// without a client certificate, with one from another CA, or from the
// right CA with another name, is refused with 401/403, never reviewed and
// never logged as a decision; the refusals are counted.
func TestForgedReviewsAreRefused(t *testing.T) {
	other, err := cluster.NewClientCA("another-ca")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.TLSCertificate(cluster.WebhookClientName)
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := env.cluster.WebhookClientCA().TLSCertificate("system:admin")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", env.port)
	for _, tt := range []struct {
		name string
		cert *tls.Certificate
		code int
		says string
	}{
		{"no certificate", nil, http.StatusUnauthorized, "client certificate signed by the configured client CA is required"},
		{"another CA", &foreign, http.StatusForbidden, "does not verify against the client CA"},
		{"right CA, wrong name", &wrongName, http.StatusForbidden, "none of them an allowed client name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			uid := "forged-" + strings.ReplaceAll(tt.name, " ", "-")
			hc := clientWith(tt.cert, "")
			for _, path := range []string{"/validate", "/mutate"} {
				code, body := postTo(t, hc, base+path, directReview(uid))
				if code != tt.code || !strings.Contains(body, tt.says) || strings.Contains(body, "AdmissionReview") {
					t.Errorf("%s: HTTP %d %q; want %d saying %q", path, code, body, tt.code, tt.says)
				}
			}
			if strings.Contains(env.decision.String(), uid) {
				t.Errorf("a refused review was logged as a decision")
			}
		})
	}
	metrics := scrape(t, apiServerClient(t), base)
	for _, want := range []string{
		`tollgate_admission_unauthenticated_total{reason="no_certificate",webhook="validate"}`,
		`tollgate_admission_unauthenticated_total{reason="untrusted",webhook="mutate"}`,
		`tollgate_admission_unauthenticated_total{reason="name",webhook="validate"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The probes need no certificate.
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := getURL(t, clientWith(nil, ""), base+path); code != http.StatusOK {
			t.Errorf("%s without a certificate: HTTP %d", path, code)
		}
	}
}

// TestMetricsNeedAuthorization: /metrics answers only a token the API
// server authenticates, for a user allowed to get /metrics; pprof is not
// served on the webhook port.
func TestMetricsNeedAuthorization(t *testing.T) {
	base := fmt.Sprintf("https://127.0.0.1:%d", env.port)
	for _, tt := range []struct {
		name  string
		token string
		code  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a token the API server does not know", "not-a-token", http.StatusUnauthorized},
		{"a token without the permission", metricsToken(t, "tollgate-e2e-nobody", false), http.StatusForbidden},
		{"an allowed token", metricsToken(t, "tollgate-e2e-scraper", true), http.StatusOK},
	} {
		if code, body := getURL(t, clientWith(nil, tt.token), base+"/metrics"); code != tt.code {
			t.Errorf("%s: HTTP %d %s; want %d", tt.name, code, tail(body, 300), tt.code)
		}
	}
	// pprof is not on the webhook port (only with --pprof-address).
	if code, _ := getURL(t, apiServerClient(t), base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the webhook port: HTTP %d, want 404", code)
	}
}

// TestClientCAReload: the client CA file replaced on disk is used without
// a restart: a certificate refused before is accepted after.
func TestClientCAReload(t *testing.T) {
	other, err := cluster.NewClientCA("the-next-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "client-ca.crt")
	if err := os.WriteFile(caFile, env.cluster.WebhookClientCA().PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &proc.Buffer{}
	stop, port, err := startServer(context.Background(), serverOptions{
		name: "tollgate-ca-reload", log: logs, decisions: &proc.Buffer{}, unmanaged: true, clientCAFile: caFile,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	defer stop()
	next, err := other.TLSCertificate(cluster.WebhookClientName)
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/validate", port)
	if code, body := postTo(t, clientWith(&next, ""), url, directReview("reload-before")); code != http.StatusForbidden {
		t.Fatalf("before the change: HTTP %d %s", code, body)
	}
	// Both CAs during a rotation, then the new one alone.
	if err := os.WriteFile(caFile, append(env.cluster.WebhookClientCA().PEM(), other.PEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if code, body := postTo(t, clientWith(&next, ""), url, directReview("reload-after")); code != http.StatusOK {
			return fmt.Errorf("after the change: HTTP %d %s", code, body)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "client CA reloaded") {
		t.Errorf("no reload in the server log")
	}
}

func scrape(t *testing.T, hc *http.Client, base string) string {
	t.Helper()
	code, body := getURL(t, hc, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d %s", code, body)
	}
	return body
}

func getURL(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

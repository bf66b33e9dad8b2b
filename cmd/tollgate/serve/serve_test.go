package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"

	"github.com/tollgate-dev/tollgate/webhook"
)

func TestOptionsValidate(t *testing.T) {
	good := func() Options {
		return Options{REST: &rest.Config{}, Port: 9443, CertDir: "/tmp/c", CertMode: CertModeSelf, Namespace: "tollgate-system",
			ManageWebhooks: true, URL: "https://127.0.0.1:9443", MutateTimeout: 3, ValidateTimeout: 5}
	}
	if err := func() *Options { o := good(); return &o }().Validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no API server", func(o *Options) { o.REST = nil }, "no API server connection"},
		{"port", func(o *Options) { o.Port = 70000 }, "--port 70000 is not a port"},
		{"cert dir", func(o *Options) { o.CertDir = "" }, "--cert-dir is required"},
		{"cert mode", func(o *Options) { o.CertMode = "acme" }, `--cert-mode "acme"`},
		{"namespace", func(o *Options) { o.Namespace = "" }, "--namespace is required"},
		{"neither URL nor service", func(o *Options) { o.URL = "" }, "exactly one of --webhook-url and --service-name"},
		{"both URL and service", func(o *Options) { o.Service = &admissionregistrationv1.ServiceReference{Name: "x"} }, "exactly one of"},
		{"timeouts", func(o *Options) { o.ValidateTimeout = 31 }, "timeouts must be 1 to 30 seconds"},
		{"plain http URL", func(o *Options) { o.URL = "http://127.0.0.1:9443" }, "want https://host:port"},
		{"metrics auth", func(o *Options) { o.MetricsAuth = "basic" }, `--metrics-auth "basic": want kubernetes or none`},
		{"client CA without names", func(o *Options) { o.ClientAuth = &webhook.ClientAuthOptions{CAFile: "/ca.crt"} }, "--client-name"},
		{"lease not longer than renew", func(o *Options) { o.LeaseDuration, o.RenewDeadline = 5*time.Second, 5*time.Second }, "--leader-elect-lease-duration 5s must be longer than --leader-elect-renew-deadline 5s"},
		{"lease shorter than the default renew", func(o *Options) { o.LeaseDuration = 8 * time.Second }, "must be longer than --leader-elect-renew-deadline 10s"},
		{"renew within the retry jitter", func(o *Options) { o.RenewDeadline, o.RetryPeriod = 3*time.Second, 3*time.Second }, "--leader-elect-renew-deadline 3s must be longer than 1.2 × --leader-elect-retry-period 3s"},
		{"negative timing", func(o *Options) { o.RetryPeriod = -time.Second }, "must not be negative"},
		{"negative resync", func(o *Options) { o.NamespaceDefaults.Resync = -time.Minute }, "--namespace-defaults-resync -1m0s must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.change(&o)
			if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestKeepThroughShutdown: a review keeps its context when the server's
// stop cancels the request's, and loses it when the client goes away while
// the server serves.
func TestKeepThroughShutdown(t *testing.T) {
	type key struct{}
	cases := []struct {
		name       string
		stopFirst  bool // the server stops before the request's context ends
		wantCancel bool
	}{
		{"client goes away while serving", false, true},
		{"server stops", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serving, stopServing := context.WithCancel(context.Background())
			defer stopServing()
			reqCtx, endRequest := context.WithCancel(context.WithValue(context.Background(), key{}, "kept"))
			defer endRequest()

			got := make(chan context.Context, 1)
			release := make(chan struct{})
			h := keepThroughShutdown(serving, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				got <- r.Context()
				<-release
			}))
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(reqCtx, http.MethodPost, "/validate", nil))
			}()
			ctx := <-got
			if v, _ := ctx.Value(key{}).(string); v != "kept" {
				t.Errorf("the review's context lost the request's values")
			}
			if tc.stopFirst {
				stopServing()
			}
			endRequest()
			select {
			case <-ctx.Done():
				if !tc.wantCancel {
					t.Errorf("the review's context was cancelled when the server stopped")
				}
			case <-time.After(200 * time.Millisecond):
				if tc.wantCancel {
					t.Errorf("the review's context lives on after its client went away")
				}
			}
			close(release)
			<-done
			if ctx.Err() == nil {
				t.Errorf("the review's context outlives its handler")
			}
		})
	}
}

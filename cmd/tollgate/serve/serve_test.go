package serve

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/client-go/rest"
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

package cli

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/library"
)

func TestVersionOfAServer(t *testing.T) {
	answer := `{"version":"v1.4.0","library":"0.6.0","policySet":{"ref":"oci://registry.example/platform/policies:prod","digest":"sha256:321c","revision":"sha256:4d72"}}`
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			_, _ = w.Write([]byte(answer))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	code, out, errOut := run(t, "", "version", "--server", srv.URL, "--insecure-skip-tls-verify")
	want := "policy library " + library.Version + "\nserver " + srv.URL + ": tollgate v1.4.0, policy library 0.6.0\n" +
		"policy set oci://registry.example/platform/policies:prod\n  digest sha256:321c\n  revision sha256:4d72\n"
	if code != ExitOK || !strings.HasSuffix(out, want) {
		t.Errorf("exit %d\n%s\n%s\nwant suffix\n%s", code, out, errOut, want)
	}

	// The server's certificate checked against its CA.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "", "version", "--server", srv.URL, "--ca-file", ca, "-o", "json"); code != ExitOK ||
		!strings.Contains(out, `"server":{"version":"v1.4.0","library":"0.6.0","policySet":{"ref":"oci://registry.example/platform/policies:prod"`) {
		t.Errorf("with --ca-file, json: exit %d\n%s\n%s", code, out, errOut)
	}
	// Not checked against any CA: refused.
	if code, _, errOut := run(t, "", "version", "--server", srv.URL); code != ExitUsage || !strings.Contains(errOut, "certificate") {
		t.Errorf("unknown certificate: exit %d: %s", code, errOut)
	}

	answer = `{"version":"dev","library":"0.6.0"}`
	if _, out, _ := run(t, "", "version", "--server", srv.URL, "--insecure-skip-tls-verify"); !strings.Contains(out, "policy set: none") {
		t.Errorf("no policy set:\n%s", out)
	}

	// Bad input: each a clear error, exit 2.
	for _, c := range []struct {
		answer, server, want string
	}{
		{`<html>login</html>`, srv.URL, "not a tollgate server's answer"},
		{`{"library":"x"}`, srv.URL, "no version in it"},
		{`{"version":"` + strings.Repeat("x", 70<<10) + `"}`, srv.URL, "answer over 65536 bytes"},
		{answer, srv.URL + "/nothing-here", "HTTP 404"},
		{answer, "127.0.0.1:8443", "want a URL such as https://127.0.0.1:8443"},
		{answer, "ftp://x", "want a URL"},
	} {
		answer = c.answer
		code, _, errOut := run(t, "", "version", "--server", c.server, "--insecure-skip-tls-verify")
		if code != ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("%.40q at %s: exit %d: %s, want %q", c.answer, c.server, code, errOut, c.want)
		}
	}
	if code, _, errOut := run(t, "", "version", "-o", "yaml"); code != ExitUsage || !strings.Contains(errOut, "want text or json") {
		t.Errorf("-o yaml: %d %s", code, errOut)
	}
}

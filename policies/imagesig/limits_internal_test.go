package imagesig

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestLimitTransport: an answer longer than the cap fails when the cap
// is reached; one within it reads whole.
func TestLimitTransport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("m", (len(r.URL.Path)-1)*1000))
	}))
	defer srv.Close()
	client := &http.Client{Transport: limitTransport{next: http.DefaultTransport, limit: 5000}}
	for _, tc := range []struct {
		path string
		want string // error, or empty
	}{
		{"/abcde", ""},                        // 5000 bytes: exactly the cap
		{"/abcdef", "larger than 5000 bytes"}, // 6000
	} {
		resp, err := client.Get(srv.URL + tc.path) //nolint:noctx // a local test server
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case tc.want == "" && (err != nil || len(b) != 5000):
			t.Errorf("%s: read %d bytes, %v", tc.path, len(b), err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || len(b) > 5000):
			t.Errorf("%s: read %d bytes, %v; want the cap's error", tc.path, len(b), err)
		}
	}
}

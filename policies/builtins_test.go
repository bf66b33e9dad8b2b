package policies_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tollgate-dev/tollgate/policies"
)

func evalBuiltin(t *testing.T, query string, input any) (any, bool) {
	t.Helper()
	opts := []func(*rego.Rego){rego.Query(query), rego.Input(input), rego.StrictBuiltinErrors(true)}
	for _, b := range policies.StandardBuiltins() {
		opts = append(opts, rego.FunctionDyn(&rego.Function{Name: b.Name, Decl: b.Decl}, b.Impl))
	}
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(rs) == 0 {
		return nil, false
	}
	return rs[0].Bindings["x"], true
}

const sha = "sha256:4f2a7e0c1b0d7bb3f8a9e4f3d9c1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3"

func TestParseImage(t *testing.T) {
	type img struct {
		Valid      bool
		Registry   string
		Repository string
		Tag        string
		Digest     string
	}
	tests := []struct {
		ref  any
		want img
	}{
		{"nginx", img{true, "docker.io", "library/nginx", "", ""}},
		{"nginx:1.27", img{true, "docker.io", "library/nginx", "1.27", ""}},
		{"docker.io/library/nginx", img{true, "docker.io", "library/nginx", "", ""}},
		{"bitnami/redis:7", img{true, "docker.io", "bitnami/redis", "7", ""}},
		{"reg:5000/ns/img:tag", img{true, "reg:5000", "ns/img", "tag", ""}},
		{"localhost:5000/i", img{true, "localhost:5000", "i", "", ""}},
		{"localhost/i", img{true, "localhost", "i", "", ""}},
		{"img@" + sha, img{true, "docker.io", "library/img", "", sha}},
		{"corp.io/app:1.0@" + sha, img{true, "corp.io", "app", "1.0", sha}},
		{"corp.io.evil.net/x", img{true, "corp.io.evil.net", "x", "", ""}},
		{"[::1]:5000/x:1", img{true, "[::1]:5000", "x", "1", ""}},
		{"Nginx", img{Valid: false}},
		{"corp.io/App", img{Valid: false}},
		{"nginx:", img{Valid: false}},
		{"nginx@sha256:abc", img{Valid: false}},
		{"", img{Valid: false}},
		{" nginx", img{Valid: false}},
		{"a//b", img{Valid: false}},
		{strings.Repeat("a", 300), img{Valid: false}},
		{"corp.io/" + strings.Repeat("a/", 130) + "x", img{Valid: false}},
		{strings.Repeat("x", 5000), img{Valid: false}},
		{42, img{Valid: false}},
	}
	for _, tt := range tests {
		name, _ := tt.ref.(string)
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		t.Run(name, func(t *testing.T) {
			v, ok := evalBuiltin(t, "x := tollgate.parse_image(input.ref)", map[string]any{"ref": tt.ref})
			if !ok {
				t.Fatal("parse_image was undefined")
			}
			m := v.(map[string]any)
			got := img{m["valid"].(bool), m["registry"].(string), m["repository"].(string), m["tag"].(string), m["digest"].(string)}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !got.Valid && m["error"] == "" {
				t.Error("an invalid reference must say why")
			}
		})
	}
}

func TestParseQuantity(t *testing.T) {
	tests := []struct {
		name string
		q    any
		want float64
		ok   bool
	}{
		{"millicores", "500m", 0.5, true},
		{"cores", "2", 2, true},
		{"YAML number", 2, 2, true},
		{"YAML float", 1.5, 1.5, true},
		{"binary suffix", "16Gi", 16 << 30, true},
		{"exponent", "1e3", 1000, true},
		{"mebibytes", "100Mi", 100 << 20, true},
		{"decimal suffix", "1k", 1000, true},
		{"word", "abc", 0, false},
		{"empty", "", 0, false},
		{"two dots", "1.2.3", 0, false},
		{"oversized", strings.Repeat("9", 100), 0, false},
		{"object", map[string]any{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := evalBuiltin(t, "x := tollgate.parse_quantity(input.q)", map[string]any{"q": tt.q})
			if ok != tt.ok {
				t.Fatalf("defined = %v (%v), want %v", ok, v, tt.ok)
			}
			if !ok {
				return
			}
			got, err := v.(json.Number).Float64()
			if err != nil || got != tt.want {
				t.Errorf("got %v, want %v", v, tt.want)
			}
		})
	}
}

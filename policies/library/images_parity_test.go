package library_test

import (
	"context"
	_ "crypto/sha256" // digest algorithms must be linked for go-digest to accept them
	_ "crypto/sha512"
	"io/fs"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
)

// parsedRef is what both parsers are compared on.
type parsedRef struct {
	Valid      bool     `json:"valid"`
	Registry   string   `json:"registry"`
	Repository string   `json:"repository"`
	Path       []string `json:"path"`
	Tag        string   `json:"tag"`
	Digest     string   `json:"digest"`
}

// goParse is the reference implementation: what the container runtime and
// Kubernetes tooling make of an image reference.
func goParse(s string) parsedRef {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return parsedRef{Path: []string{}}
	}
	p := parsedRef{
		Valid:      true,
		Registry:   reference.Domain(named),
		Repository: reference.Path(named),
	}
	p.Path = strings.Split(p.Repository, "/")
	if t, ok := named.(reference.Tagged); ok {
		p.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		p.Digest = d.Digest().String()
	}
	return p
}

func prepareParse(t *testing.T) rego.PreparedEvalQuery {
	t.Helper()
	src, err := fs.ReadFile(library.FS(), "lib/images.rego")
	if err != nil {
		t.Fatalf("reading lib/images.rego: %v", err)
	}
	opts := []func(*rego.Rego){
		rego.Query("x := data.tollgate.lib.images.parse(input.ref)"),
		rego.Module("lib/images.rego", string(src)),
		rego.StrictBuiltinErrors(true),
	}
	for _, b := range policies.StandardBuiltins() {
		opts = append(opts, rego.FunctionDyn(&rego.Function{Name: b.Name, Decl: b.Decl}, b.Impl))
	}
	q, err := rego.New(opts...).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("preparing query: %v", err)
	}
	return q
}

func regoParse(t *testing.T, q rego.PreparedEvalQuery, s string) parsedRef {
	t.Helper()
	rs, err := q.Eval(context.Background(), rego.EvalInput(map[string]any{"ref": s}))
	if err != nil {
		t.Fatalf("evaluating parse(%q): %v", s, err)
	}
	if len(rs) != 1 {
		t.Fatalf("parse(%q): want one result, got %d", s, len(rs))
	}
	m, ok := rs[0].Bindings["x"].(map[string]any)
	if !ok {
		t.Fatalf("parse(%q): result is %T, not an object", s, rs[0].Bindings["x"])
	}
	p := parsedRef{Path: []string{}}
	p.Valid, _ = m["valid"].(bool)
	p.Registry, _ = m["registry"].(string)
	p.Repository, _ = m["repository"].(string)
	p.Tag, _ = m["tag"].(string)
	p.Digest, _ = m["digest"].(string)
	segs, _ := m["path"].([]any)
	for _, s := range segs {
		str, _ := s.(string)
		p.Path = append(p.Path, str)
	}
	return p
}

const (
	hex64  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hex96  = hex64 + "0123456789abcdef0123456789abcdef"
	hex128 = hex64 + hex64
)

// TestImageParseParity is a differential test: the Rego parser must agree
// with github.com/distribution/reference on every reference, valid or not.
func TestImageParseParity(t *testing.T) {
	q := prepareParse(t)
	tests := []struct {
		name string
		ref  string
	}{
		{"official short", "nginx"},
		{"official tagged", "nginx:1.27.3"},
		{"latest tag", "nginx:latest"},
		{"official fully qualified", "docker.io/library/nginx"},
		{"hub without library", "docker.io/nginx"},
		{"legacy hub domain", "index.docker.io/nginx"},
		{"legacy hub domain with library", "index.docker.io/library/nginx:1"},
		{"hub user repo", "bitnami/redis:7.2"},
		{"hub nested path", "library/nginx"},
		{"registry with port", "reg:5000/ns/img:tag"},
		{"localhost with port", "localhost:5000/i"},
		{"localhost without port", "localhost/i"},
		{"bare localhost", "localhost"},
		{"bare localhost with port is a tag", "localhost:5000"},
		{"bare domain with port is a tag", "example.com:5000"},
		{"digest", "img@sha256:" + hex64},
		{"tag and digest", "repo:tag@sha256:" + hex64},
		{"qualified tag and digest", "gcr.io/distroless/static:nonroot@sha256:" + hex64},
		{"sha384 digest", "corp.io/app@sha384:" + hex96},
		{"sha512 digest", "corp.io/app@sha512:" + hex128},
		{"uppercase digest hex", "repo@sha256:" + strings.ToUpper(hex64)},
		{"unsupported digest algorithm", "repo@md5:0123456789abcdef0123456789abcdef"},
		{"short digest", "repo@sha256:0123456789abcdef0123456789abcdef"},
		{"uppercase digest algorithm", "repo@SHA256:" + hex64},
		{"digest without name", "@sha256:" + hex64},
		{"bare image id", hex64},
		{"algorithm-looking name", "sha256:" + hex64},
		{"uppercase name", "Nginx"},
		{"all uppercase name", "NGINX"},
		{"uppercase path", "corp.io/Team/app"},
		{"uppercase hub namespace", "docker.io/Library/nginx"},
		{"uppercase first component is a registry", "Foo/bar"},
		{"uppercase registry", "UPPER.io/x"},
		{"uppercase invalid registry", "FOO_BAR/baz"},
		{"underscore registry-looking component", "my_registry.io/app"},
		{"dotted underscore component", "foo.bar_baz/x"},
		{"uppercase tag", "nginx:V1"},
		{"ipv6 registry", "[::1]:5000/x"},
		{"ipv6 registry without port", "[::1]/x:1"},
		{"ipv6 zone", "[fe80::1%eth0]:5000/x"},
		{"bare ipv6", "::1/x"},
		{"ipv4 registry", "127.0.0.1:5000/app"},
		{"punycode registry", "xn--bcher-kva.example/app"},
		{"deep path", "registry.example.com:443/a/b/c/d/e:v1.2.3-rc.1"},
		{"separators", "corp.io/a__b/c-d/e.f/g_h/i--j"},
		{"triple underscore", "a___b"},
		{"trailing separator", "a-"},
		{"leading separator", "-a"},
		{"empty", ""},
		{"space", " "},
		{"trailing space", "nginx "},
		{"leading space", " nginx"},
		{"inner space", "ng inx"},
		{"newline", "nginx\n"},
		{"tab", "nginx\t:1"},
		{"only tag", ":latest"},
		{"empty tag", "nginx:"},
		{"empty digest", "nginx@"},
		{"tag starting with dash", "nginx:-1"},
		{"tag starting with underscore", "nginx:_1"},
		{"tag of 128", "nginx:" + strings.Repeat("t", 128)},
		{"tag of 129", "nginx:" + strings.Repeat("t", 129)},
		{"two tags", "nginx:1:2"},
		{"trailing slash", "nginx/"},
		{"qualified trailing slash", "ghcr.io/corp/app/"},
		{"leading slash", "/nginx"},
		{"double slash", "nginx//x"},
		{"qualified double slash", "ghcr.io/corp//app"},
		{"registry only", "ghcr.io/"},
		{"empty port", "example.com:/x"},
		{"named port", "example.com:http/x"},
		{"non-ascii", "ñginx"},
		{"non-ascii uppercase", "Ñginx"},
		{"path of 255", "corp.io/" + strings.Repeat("a", 255)},
		{"path of 256", "corp.io/" + strings.Repeat("a", 256)},
		{"official name of 248", strings.Repeat("a", 247)},
		{"official name of 249", strings.Repeat("a", 248)},
		{"long domain, path of 250", strings.Repeat("d", 60) + ".io/" + strings.Repeat("a", 250)},
		{"300 characters", strings.Repeat("abcdefghij", 30)},
		{"300 characters qualified", "corp.io/" + strings.Repeat("abcdefghi/", 29) + "abcdefghij"},
		{"tag and digest qualified with port", "localhost:5000/team/app:1.0@sha256:" + hex64},
		{"at without digest algorithm", "nginx@" + hex64},
	}
	seen := map[string]bool{}
	valid := 0
	for _, tc := range tests {
		if seen[tc.ref] {
			t.Fatalf("corpus lists %q twice", tc.ref)
		}
		seen[tc.ref] = true
		if goParse(tc.ref).Valid {
			valid++
		}
		t.Run(tc.name, func(t *testing.T) {
			want := goParse(tc.ref)
			got := regoParse(t, q, tc.ref)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("parse(%q) mismatch (-distribution/reference +rego):\n%s", tc.ref, diff)
			}
		})
	}
	// A corpus of only valid or only invalid references would prove little.
	if invalid := len(tests) - valid; valid < 20 || invalid < 20 {
		t.Errorf("corpus has %d valid and %d invalid references; want at least 20 of each", valid, invalid)
	}
}

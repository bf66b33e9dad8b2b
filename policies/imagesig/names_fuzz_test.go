package imagesig_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

const digest64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// imageSeeds are image references: the forms the library's fixtures and the
// e2e manifests use, Docker Hub in each of its spellings, and the corners
// of the reference grammar (ports, IPv6, digests of other algorithms,
// separators, the 64-hex name distribution/reference refuses).
func imageSeeds(t testing.TB) []string {
	seeds := []string{
		"nginx", "nginx:1.27", "library/nginx", "docker.io/nginx", "docker.io/library/nginx:1.27",
		"index.docker.io/library/nginx", "index.docker.io/nginx", "registry-1.docker.io/library/nginx",
		"registry-1.docker.io/nginx", "DOCKER.IO/nginx", "docker.io", "localhost/app", "localhost:5000/app:v1",
		"127.0.0.1:5000/team/app@sha256:" + digest64, "[::1]:5000/app", "[fe80::1%eth0]/app",
		"ghcr.io/corp/web:1.4@sha256:" + digest64, "repo@sha512:" + digest64 + digest64,
		"repo@sha256:" + strings.ToUpper(digest64), "a/b__c/d.e/f-g", "a/-b", "a/b..c", "a/b_c", "a/b___c",
		"app:-tag", "app:.tag", "app:" + strings.Repeat("t", 129), digest64, "sha256:" + digest64,
		"Upper/app", "host.example/Upper", "host_name.example/app", "-host.example/app", "host.example:/app",
		"a:1/b", "a.b:65536/c", "registry.corp.example/team/app", "quay.io/nginx", "mirror.example/docker.io/library/nginx",
		"", ":", "@", "/", "a//b", "a/", "a:b:c", "a@b", "a@sha256:",
	}
	// Every image the library's fixtures and the e2e manifests name.
	imageLine := regexp.MustCompile(`(?m)^\s*-?\s*image:\s*["']?([^"'\s#]+)`)
	for _, root := range []string{"../library", "../../test/manifests"} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
				return nil //nolint:nilerr // a missing fixture tree only removes seeds
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range imageLine.FindAllSubmatch(data, -1) {
				seeds = append(seeds, string(m[1]))
			}
			return nil
		})
	}
	return seeds
}

// canonical is distribution/reference's normalised form of a reference:
// its repository, tag and digest. Docker Hub's aliases name Docker Hub:
// Tollgate documents index.docker.io and registry-1.docker.io as docker.io,
// and each registry host in one spelling (canonicalHost),
// where a one-segment name is in library/ as it is on docker.io.
func canonical(s string) (repo, tag, digest string, err error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", "", "", err
	}
	domain, path := reference.Domain(named), reference.Path(named)
	if domain == "" {
		// host_name.example/app: the first segment is neither a host nor
		// a path of Docker Hub's, and no runtime can pull it.
		return "", "", "", errors.New("no registry")
	}
	domain = canonicalHost(domain)
	if domain == "docker.io" || domain == "index.docker.io" || domain == "registry-1.docker.io" {
		domain = "docker.io"
		if !strings.Contains(path, "/") {
			path = "library/" + path
		}
	}
	repo = domain + "/" + path
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		digest = d.Digest().String()
	}
	return repo, tag, digest, nil
}

// validAuthority reports whether a registry host is a URI authority
// (RFC 3986) a client can connect to: distribution/reference's grammar
// also takes a bracketed host that is no IPv6 address ("[0]").
func validAuthority(host string) bool {
	u, err := url.Parse("//" + host)
	if err != nil || u.Host != host {
		return false
	}
	if h := u.Hostname(); strings.HasPrefix(host, "[") && net.ParseIP(h) == nil {
		return false
	}
	return true
}

// canonicalHost spells a registry host as the README documents: every
// spelling the runtime reaches the same registry by is one name (the host
// lower-cased, the HTTPS port dropped, the port as a number, an IP address
// in its shortest form), unless the host would then read as a Docker Hub
// namespace (no dot, no port, not localhost), which keeps its spelling.
func canonicalHost(domain string) string {
	host, port := domain, ""
	if i := strings.LastIndexByte(domain, ':'); i >= 0 && !strings.Contains(domain[i:], "]") {
		host, port = domain[:i], domain[i+1:]
	}
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		host = ip.Unmap().String()
		if ip.Unmap().Is6() {
			host = "[" + host + "]"
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10)
		if n == 443 {
			port = ""
		}
	}
	switch {
	case port != "":
		return host + ":" + port
	case !strings.ContainsAny(host, ".[") && host != "localhost":
		return domain
	}
	return host
}

// FuzzReferenceAgreesWithDistribution parses any string as Tollgate's
// image gate does and as distribution/reference (what container runtimes
// pull by, and what the Rego library's image.parse reads) does: both
// reject it, or both accept it with the same canonical repository, tag
// and digest. The one difference allowed is a digest of an algorithm
// other than sha256, which Tollgate refuses (signatures are stored by
// sha256 digest) and the reference accepts.
func FuzzReferenceAgreesWithDistribution(f *testing.F) {
	for _, s := range imageSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, terr := imagesig.ParseReference(s)
		repo, tag, digest, derr := canonical(s)
		switch {
		case terr != nil && derr != nil:
			return
		case terr != nil:
			if digest != "" && !strings.HasPrefix(digest, "sha256:") {
				return
			}
			if host := strings.SplitN(repo, "/", 2)[0]; !validAuthority(host) {
				return // [0]:0: the reference's grammar takes it, no runtime can reach it
			}
			t.Fatalf("%q: Tollgate rejects (%v), distribution/reference reads %s tag %q digest %q", s, terr, repo, tag, digest)
		case derr != nil:
			t.Fatalf("%q: Tollgate reads %s (%s), distribution/reference rejects: %v", s, imagesig.Repository(ref), ref, derr)
		}
		if got := imagesig.Repository(ref); got != repo {
			t.Fatalf("%q: Tollgate's repository %s, distribution/reference's %s", s, got, repo)
		}
		switch r := ref.(type) {
		case name.Digest:
			if r.DigestStr() != digest {
				t.Fatalf("%q: Tollgate's digest %s, distribution/reference's %s", s, r.DigestStr(), digest)
			}
		case name.Tag:
			want := tag
			if want == "" {
				want = "latest" // the tag a runtime pulls when none is written
			}
			if digest != "" || r.TagStr() != want {
				t.Fatalf("%q: Tollgate's tag %q, distribution/reference's tag %q digest %q", s, r.TagStr(), tag, digest)
			}
		}
		// The canonical form reads back as itself, in both.
		again, err := imagesig.ParseReference(repo)
		if err != nil || imagesig.Repository(again) != repo {
			t.Fatalf("%q: canonical repository %s does not read back: %v", s, repo, err)
		}
	})
}

// FuzzGlobAliases checks the glob invariants of image policies: a glob
// written with a Docker Hub alias matches exactly the images its docker.io
// form matches; a glob of literal segments matches its own repository in
// every spelling; and what a glob matches is decided by the canonical
// repository alone (tag and digest never widen or narrow it).
func FuzzGlobAliases(f *testing.F) {
	for _, s := range imageSeeds(f) {
		f.Add("docker.io/library/*", s)
		f.Add("index.docker.io/**", s)
		f.Add(s, s)
	}
	f.Add("registry-1.docker.io/library/nginx", "nginx@sha256:"+digest64)
	f.Add("ghcr.io/corp/?eb", "ghcr.io/corp/web:1")
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		f.Fatal(err)
	}
	compile := func(glob string) (*imagesig.Policy, error) {
		return imagesig.Compile(context.Background(), v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{
			Glob: glob, Authorities: []v1alpha1.Authority{{Name: "a", Key: &v1alpha1.KeyAuthority{Data: string(pem)}}},
		}}}, nil)
	}
	f.Fuzz(func(t *testing.T, glob, image string) {
		p, err := compile(glob)
		if err != nil {
			if glob != "" && !strings.Contains(err.Error(), "spec.images[0].glob") {
				t.Fatalf("glob %q: error does not name the field: %v", glob, err)
			}
			return
		}
		matches := p.Matches(image)
		for _, alias := range []string{"index.docker.io/", "registry-1.docker.io/"} {
			if rest, ok := strings.CutPrefix(glob, "docker.io/"); ok {
				q, err := compile(alias + rest)
				if err != nil {
					t.Fatalf("glob %q compiles, its alias %q does not: %v", glob, alias+rest, err)
				}
				if q.Matches(image) != matches {
					t.Fatalf("glob %q matches %q: %v; its alias %q: %v", glob, image, matches, alias+rest, !matches)
				}
			}
		}
		ref, err := imagesig.ParseReference(image)
		if err != nil {
			if matches {
				t.Fatalf("glob %q matches %q, which does not parse: %v", glob, image, err)
			}
			return
		}
		repo := imagesig.Repository(ref)
		if p.Matches(repo) != matches {
			t.Fatalf("glob %q matches %q: %v, but its repository %s: %v", glob, image, matches, repo, !matches)
		}
		if !strings.ContainsAny(glob, "*?") {
			lit, err := compile(repo)
			if err != nil || !lit.Matches(image) {
				t.Fatalf("the literal glob %q does not match %q: %v", repo, image, err)
			}
		}
	})
}

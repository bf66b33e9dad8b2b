// Package imagesig verifies container images against an image policy
// (TollgateImagePolicy) with sigstore cosign: it matches an image to a
// rule, resolves its tag to a digest once, verifies that digest's
// signatures against the rule's authorities (public keys, or keyless
// identities trusted through Fulcio roots and a Rekor key or a sigstore
// trusted root, all offline), checks the in-toto attestations each
// authority must have made with their Rego policies, and returns the
// reference pinned to the verified digest.
//
// A policy is compiled once (keys, certificates, trusted roots and Rego
// parsed) and verifies many images; verdicts are cached by digest and
// policy. What a registry can make a verification read is capped: so many
// signature or attestation layers, so many bytes each (Options).
package imagesig

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Actions for an image, as the admission webhook applies them.
const (
	ActionAllow = "allow"
	ActionWarn  = "warn"
	ActionDeny  = "deny"
)

// Policy is a compiled image policy.
type Policy struct {
	rules     []rule
	enforce   bool
	unmatched string
	// id identifies the policy's content, and every document it read, in
	// cache keys.
	id string
}

type rule struct {
	glob        string
	re          *regexp.Regexp
	all         bool
	authorities []authority
}

// SecretReader reads a Secret key holding a document an authority refers
// to (a public key, certificates, a trusted root), so that trust material
// can live in Secrets rather than in the policy.
type SecretReader func(ctx context.Context, ref v1alpha1.SecretKeyRef) ([]byte, error)

// Compile checks an image policy and prepares it for verification: keys,
// certificates and trusted roots are parsed and attestation policies
// compiled, once. Errors name the field at fault
// (spec.images[1].authorities[0].keyless.identities[0].subjectRegExp).
func Compile(ctx context.Context, spec v1alpha1.ImagePolicySpec, secrets SecretReader) (*Policy, error) {
	p := &Policy{enforce: spec.Mode != "Warn", unmatched: spec.Unmatched}
	if p.unmatched == "" {
		p.unmatched = ActionDeny
	}
	c := &compiler{ctx: ctx, secrets: secrets, material: sha256.New()}
	if spec.Mode != "" && spec.Mode != "Enforce" && spec.Mode != "Warn" {
		c.fail("spec.mode: %q: want Enforce or Warn", spec.Mode)
	}
	switch p.unmatched {
	case ActionAllow, ActionWarn, ActionDeny:
	default:
		c.fail("spec.unmatched: %q: want allow, warn or deny", spec.Unmatched)
	}
	if len(spec.Images) == 0 {
		c.errs = append(c.errs, errors.New("spec.images: at least one rule is required"))
	}
	for i, img := range spec.Images {
		at := fmt.Sprintf("spec.images[%d]", i)
		re, err := globRegexp(img.Glob)
		if err != nil {
			c.fail("%s.glob: %w", at, err)
			continue
		}
		r := rule{glob: img.Glob, re: re, all: img.Require == "all"}
		if img.Require != "" && img.Require != "any" && img.Require != "all" {
			c.fail("%s.require: %q: want any or all", at, img.Require)
		}
		if len(img.Authorities) == 0 {
			c.fail("%s.authorities: at least one is required", at)
		}
		for j, a := range img.Authorities {
			if compiled, ok := c.authority(fmt.Sprintf("%s.authorities[%d]", at, j), a); ok {
				r.authorities = append(r.authorities, compiled)
			}
		}
		p.rules = append(p.rules, r)
	}
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	b, _ := json.Marshal(spec) // the spec's content identifies cached verdicts,
	c.material.Write(b)        // with the content of the Secrets it names
	p.id = hex.EncodeToString(c.material.Sum(nil)[:8])
	return p, nil
}

// Enforce reports whether a failed verification denies (else it warns).
func (p *Policy) Enforce() bool { return p.enforce }

// dockerHub is Docker Hub's registry as Tollgate names it everywhere: in
// findings, in image-policy globs and in the library's registry policies
// (distribution/reference's canonical form). Its aliases are normalised to
// it, so a glob written for docker.io/library/* matches every Hub image.
const dockerHub = "docker.io"

// hubAliases are the other names of Docker Hub's registry.
var hubAliases = []string{"index.docker.io", "registry-1.docker.io"}

// Repository is the canonical repository of a reference, without tag or
// digest: go-containerregistry's name with its registry canonical
// (canonicalRegistry): "docker.io/library/nginx",
// "registry.corp.example/team/app".
func Repository(ref name.Reference) string {
	repo := ref.Context()
	reg, path := canonicalRegistry(repo.RegistryStr()), repo.RepositoryStr()
	if reg == dockerHub && !strings.Contains(path, "/") {
		path = "library/" + path // as docker.io/nginx is docker.io/library/nginx, in every alias
	}
	return reg + "/" + path
}

// canonicalRegistry writes a registry host the one way Tollgate matches it.
// Every spelling that reaches the same registry is one name, so a glob
// written for one cannot be stepped around with another the container
// runtime pulls from just the same: host names are lower-cased (DNS and TLS
// ignore case: Ghcr.io is ghcr.io), the HTTPS default port is dropped
// (ghcr.io:443 and ghcr.io:0443 are ghcr.io), IP addresses are written in their shortest form
// with IPv4-mapped IPv6 unmapped ([::ffff:127.0.0.1]:5000 is
// 127.0.0.1:5000), and Docker Hub's aliases are docker.io.
func canonicalRegistry(reg string) string {
	host, port := reg, ""
	if i := strings.LastIndexByte(reg, ':'); i >= 0 && !strings.Contains(reg[i:], "]") {
		host, port = reg[:i], reg[i+1:]
	}
	host = strings.ToLower(host)
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		ip = ip.Unmap()
		host = ip.String()
		if ip.Is6() {
			host = "[" + host + "]"
		}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err == nil {
		port = strconv.FormatUint(n, 10) // :05000 dials :5000
		if n == 443 {
			port = ""
		}
	}
	if port == "" && (host == dockerHub || slices.Contains(hubAliases, host)) {
		return dockerHub
	}
	if port != "" {
		return host + ":" + port
	}
	if !strings.ContainsAny(host, ".[") && host != "localhost" {
		// Without a dot or a port a host reads as a Docker Hub namespace
		// (upper/app is docker.io/upper/app): keep it as written.
		return reg
	}
	return host
}

// canonicalGlob writes a glob's registry as canonicalRegistry writes it,
// so a glob written with an alias (index.docker.io/library/*,
// GHCR.io:443/corp/*) matches the same images as the canonical one.
func canonicalGlob(glob string) string {
	reg, rest, ok := strings.Cut(glob, "/")
	if !ok || strings.ContainsAny(reg, "*?") || !strings.ContainsAny(reg, ".:[") && reg != "localhost" {
		return glob // no registry segment, or a pattern over registries
	}
	return canonicalRegistry(reg) + "/" + rest
}

// globRegexp turns a glob on a canonical repository ("registry/team/*")
// into an anchored regexp: "*" within a path segment, "**" across them.
func globRegexp(glob string) (*regexp.Regexp, error) {
	if glob == "" {
		return nil, errors.New("empty")
	}
	glob = canonicalGlob(glob)
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(glob); i++ {
		switch c := glob[i]; {
		case c == '*' && i+1 < len(glob) && glob[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// Options configure a Verifier.
type Options struct {
	// Timeout bounds the registry calls of one verification (default 3s);
	// it should sit inside the webhook timeout.
	Timeout time.Duration
	// CacheTTL and CacheSize bound the verdict cache (default 10 minutes,
	// 10,000 entries). A cached verdict stands for CacheTTL: an
	// attestation policy that judges a scan's age sees input.now of the
	// verification that was cached.
	CacheTTL  time.Duration
	CacheSize int
	// Insecure allows plain-HTTP registries (tests and local registries).
	Insecure bool
	// Transport for registry calls (default http.DefaultTransport).
	Transport http.RoundTripper
	// Now is the clock of the cache and of attestation policies'
	// input.now (default time.Now). Certificate validity is checked
	// by cosign, on the real clock.
	Now func() time.Time
	// MaxSignatures caps the layers of an image's signature manifest,
	// and of its attestation manifest, that are read (default 100): an
	// image with more fails, with none read. cosign's own cap is 1,000.
	MaxSignatures int
	// MaxPayloadBytes caps the size of one signature or attestation
	// payload (default 1 MiB): a manifest listing a larger layer fails
	// before it is read. cosign's own cap is 128 MiB.
	MaxPayloadBytes int64
	// PolicyTimeout bounds one evaluation of an attestation policy
	// (default 1s); a policy that runs longer leaves the image
	// undecided, as a registry that does not answer does.
	PolicyTimeout time.Duration
}

// Verifier verifies images against compiled policies, caching verdicts.
type Verifier struct {
	opts Options
	// transport is opts.Transport with every answer capped.
	transport http.RoundTripper

	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	result  Result
	expires time.Time
}

// NewVerifier builds a Verifier; zero Options take their defaults.
func NewVerifier(opts Options) *Verifier {
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = 10 * time.Minute
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 10000
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSignatures <= 0 {
		opts.MaxSignatures = 100
	}
	if opts.MaxPayloadBytes <= 0 {
		opts.MaxPayloadBytes = 1 << 20
	}
	if opts.PolicyTimeout <= 0 {
		opts.PolicyTimeout = time.Second
	}
	return &Verifier{
		opts:      opts,
		transport: limitTransport{next: opts.Transport, limit: max(maxManifestBytes, opts.MaxPayloadBytes)},
		cache:     map[string]cacheEntry{},
	}
}

// Result is what was checked for one image and why it passed or failed.
type Result struct {
	// Image is the reference as given; Pinned is it pinned to the verified
	// digest (repo:tag@sha256:...), empty when nothing was verified.
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
	Pinned string `json:"pinned,omitempty"`
	// Rule is the glob that matched, empty when none did.
	Rule string `json:"rule,omitempty"`
	// Verified is true when the rule's authorities are satisfied.
	Verified bool `json:"verified"`
	// Action is allow, warn or deny, after the policy's mode and its
	// handling of unmatched images.
	Action string `json:"action"`
	// Passed are the authorities satisfied (signature and attestations);
	// Reason says what failed.
	Passed []string `json:"passed,omitempty"`
	Reason string   `json:"reason,omitempty"`
	// Attestations are the attestations required by the authorities whose
	// signature verified, each passed or not, and why.
	Attestations []AttestationResult `json:"attestations,omitempty"`
	// Cached is true when the verdict came from the cache.
	Cached bool `json:"cached,omitempty"`
}

// AttestationResult is what one required attestation came to, so that a
// denial can quote the attestation policy's own messages.
type AttestationResult struct {
	// Authority and Name say which attestation of the policy this is.
	Authority string `json:"authority"`
	Name      string `json:"name"`
	// PredicateType is the type required (a short name made a URI).
	PredicateType string `json:"predicateType"`
	Passed        bool   `json:"passed"`
	// Denied are the deny messages of the attestation's policy, when
	// attestations of the type were found and none passed.
	Denied []string `json:"denied,omitempty"`
	// Reason says why it failed otherwise: none of the type, none signed
	// by the authority, a cap reached.
	Reason string `json:"reason,omitempty"`
}

func (r Result) clone() Result {
	r.Passed = append([]string(nil), r.Passed...)
	if r.Attestations != nil {
		atts := make([]AttestationResult, len(r.Attestations))
		for i, a := range r.Attestations {
			a.Denied = append([]string(nil), a.Denied...)
			atts[i] = a
		}
		r.Attestations = atts
	}
	return r
}

// Verify checks one image. keychain supplies registry credentials (the
// pod's imagePullSecrets, for one); nil means anonymous. An error means the
// verdict could not be reached (a malformed reference, a registry that is
// down or slow): the caller denies in Enforce mode and warns in Warn mode.
func (v *Verifier) Verify(ctx context.Context, p *Policy, image string, keychain authn.Keychain) (*Result, error) {
	res := &Result{Image: image}
	var nameOpts []name.Option
	if v.opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := ParseReference(image, nameOpts...)
	if err != nil {
		return nil, err
	}
	repo := Repository(ref)
	var r *rule
	for i := range p.rules {
		if p.rules[i].re.MatchString(repo) {
			r = &p.rules[i]
			break
		}
	}
	if r == nil {
		res.Action = p.unmatched
		res.Reason = "no rule of the image policy matches " + repo
		return res, nil
	}
	res.Rule = r.glob
	if keychain == nil {
		keychain = authn.NewMultiKeychain(authn.DefaultKeychain)
	}
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithTransport(v.transport)}

	// The digest verified is the digest admitted: a reference that carries
	// a digest is verified at that digest, whatever its tag says; a tag is
	// resolved once, here.
	digest, err := resolve(ref, ropts)
	if err != nil {
		return nil, err
	}
	res.Digest = digest.DigestStr()
	pin := pinned(ref, digest)

	key := p.id + "|" + r.glob + "|" + digest.String()
	if cached, ok := v.lookup(key); ok {
		cached.Image, cached.Cached = image, true
		if cached.Verified {
			cached.Pinned = pin
		}
		return &cached, nil
	}
	if err := v.check(ctx, r, digest, ropts, res); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("verifying %s: the registry did not answer within %s: %w", digest, v.opts.Timeout, ctx.Err())
		}
		return nil, fmt.Errorf("verifying %s: %w", digest, err)
	}
	switch {
	case res.Verified:
		res.Action = ActionAllow
		res.Pinned = pin
	case p.enforce:
		res.Action = ActionDeny
	default:
		res.Action = ActionWarn
	}
	stored := res.clone()
	stored.Pinned = "" // pinned per reference, not per digest
	v.store(key, stored)
	return res, nil
}

// check verifies a digest against a rule's authorities and fills in the
// verdict. Signatures and attestations are each read once, whatever the
// number of authorities. An error means no verdict.
func (v *Verifier) check(ctx context.Context, r *rule, digest name.Digest, ropts []remote.Option, res *Result) error {
	h, err := v1.NewHash(digest.DigestStr())
	if err != nil {
		return err
	}
	sigs, err := v.attachments(digest, kindSignature, ropts)
	if err != nil {
		return err
	}
	if sigs.problem != "" {
		res.Reason = fmt.Sprintf("%s cannot be verified: %s", digest.String(), sigs.problem)
		return nil
	}
	// Attestations are read when an authority whose signature verified
	// requires some, once.
	var atts *attached
	attestations := func() (attached, error) {
		if atts == nil {
			a, err := v.attachments(digest, kindAttestation, ropts)
			if err != nil {
				return attached{}, err
			}
			atts = &a
		}
		return *atts, nil
	}
	ev := evaluation{now: v.opts.Now(), timeout: v.opts.PolicyTimeout}
	var failures []string
	unattested := false // an authority signed but its attestations failed
	for i := range r.authorities {
		a := &r.authorities[i]
		ok, problem := a.verifySignatures(ctx, sigs.list, h)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !ok {
			failures = append(failures, a.name+": "+problem)
			continue
		}
		if len(a.attestations) == 0 {
			res.Passed = append(res.Passed, a.name)
			continue
		}
		atts, err := attestations()
		if err != nil {
			return err
		}
		results, passed, err := a.verifyAttestations(ctx, atts, h, ev)
		if err != nil {
			return err
		}
		res.Attestations = append(res.Attestations, results...)
		if passed {
			res.Passed = append(res.Passed, a.name)
			continue
		}
		unattested = true
		for _, at := range results {
			switch {
			case at.Passed:
			case len(at.Denied) > 0:
				failures = append(failures, fmt.Sprintf("%s: attestation %s denied: %s", a.name, at.Name, strings.Join(at.Denied, "; ")))
			default:
				failures = append(failures, fmt.Sprintf("%s: attestation %s: %s", a.name, at.Name, at.Reason))
			}
		}
	}
	res.Verified = len(res.Passed) > 0 && (!r.all || len(res.Passed) == len(r.authorities))
	if !res.Verified {
		need := "any one of"
		if r.all {
			need = "all of"
		}
		verb := "is not signed by"
		if unattested {
			verb = "does not satisfy"
		}
		res.Reason = fmt.Sprintf("%s %s %s the rule's authorities (%s)", digest.String(), verb, need, strings.Join(failures, "; "))
	}
	return nil
}

func resolve(ref name.Reference, ropts []remote.Option) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, ropts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s to a digest: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// pinned writes repo:tag@digest (or repo@digest when there is no tag).
func pinned(ref name.Reference, d name.Digest) string {
	if t, ok := ref.(name.Tag); ok {
		return t.Context().Name() + ":" + t.TagStr() + "@" + d.DigestStr()
	}
	// A reference given as repo:tag@digest parses as a digest; keep its tag.
	s := ref.String()
	if i := strings.LastIndex(s, "@"); i > 0 {
		return s[:i] + "@" + d.DigestStr()
	}
	return d.String()
}

func (v *Verifier) lookup(key string) (Result, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.cache[key]
	if !ok || !v.opts.Now().Before(e.expires) {
		return Result{}, false
	}
	return e.result.clone(), true
}

func (v *Verifier) store(key string, r Result) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= v.opts.CacheSize {
		now := v.opts.Now()
		for k, e := range v.cache { // drop the expired first, then anything
			if !now.Before(e.expires) || len(v.cache) >= v.opts.CacheSize {
				delete(v.cache, k)
			}
			if len(v.cache) < v.opts.CacheSize*9/10 {
				break
			}
		}
	}
	v.cache[key] = cacheEntry{result: r, expires: v.opts.Now().Add(v.opts.CacheTTL)}
}

// Package imagesig verifies container image signatures with sigstore
// cosign against an image policy (TollgateImagePolicy): it matches an image
// to a rule, resolves its tag to a digest once, verifies that digest's
// signatures against the rule's authorities and returns the reference
// pinned to the verified digest. Verdicts are cached by digest and policy.
// A policy is compiled once (keys parsed, globs compiled) and verifies many
// images.
package imagesig

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

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
	// id identifies the policy's content in cache keys.
	id string
}

type rule struct {
	glob        string
	re          *regexp.Regexp
	all         bool
	authorities []authority
}

type authority struct {
	name     string
	verifier signature.Verifier
}

// SecretReader reads a Secret key holding a public key, for authorities
// that reference one.
type SecretReader func(ctx context.Context, ref v1alpha1.SecretKeyRef) ([]byte, error)

// Compile checks an image policy and prepares it for verification. Errors
// name the field at fault (spec.images[1].authorities[0].key.data).
func Compile(ctx context.Context, spec v1alpha1.ImagePolicySpec, secrets SecretReader) (*Policy, error) {
	p := &Policy{enforce: spec.Mode != "Warn", unmatched: spec.Unmatched}
	if p.unmatched == "" {
		p.unmatched = ActionDeny
	}
	var errs []error
	if spec.Mode != "" && spec.Mode != "Enforce" && spec.Mode != "Warn" {
		errs = append(errs, fmt.Errorf("spec.mode: %q: want Enforce or Warn", spec.Mode))
	}
	switch p.unmatched {
	case ActionAllow, ActionWarn, ActionDeny:
	default:
		errs = append(errs, fmt.Errorf("spec.unmatched: %q: want allow, warn or deny", spec.Unmatched))
	}
	if len(spec.Images) == 0 {
		errs = append(errs, errors.New("spec.images: at least one rule is required"))
	}
	for i, img := range spec.Images {
		at := fmt.Sprintf("spec.images[%d]", i)
		re, err := globRegexp(img.Glob)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.glob: %w", at, err))
			continue
		}
		r := rule{glob: img.Glob, re: re, all: img.Require == "all"}
		if img.Require != "" && img.Require != "any" && img.Require != "all" {
			errs = append(errs, fmt.Errorf("%s.require: %q: want any or all", at, img.Require))
		}
		if len(img.Authorities) == 0 {
			errs = append(errs, fmt.Errorf("%s.authorities: at least one is required", at))
		}
		for j, a := range img.Authorities {
			aat := fmt.Sprintf("%s.authorities[%d]", at, j)
			if a.Key == nil {
				errs = append(errs, fmt.Errorf("%s: set key", aat))
				continue
			}
			pem := []byte(a.Key.Data)
			switch {
			case a.Key.Data != "" && a.Key.SecretRef != nil:
				errs = append(errs, fmt.Errorf("%s.key: set data or secretRef, not both", aat))
				continue
			case a.Key.SecretRef != nil:
				if secrets == nil {
					errs = append(errs, fmt.Errorf("%s.key.secretRef: Secrets cannot be read here; give the key inline", aat))
					continue
				}
				if pem, err = secrets(ctx, *a.Key.SecretRef); err != nil {
					errs = append(errs, fmt.Errorf("%s.key.secretRef: %w", aat, err))
					continue
				}
			case a.Key.Data == "":
				errs = append(errs, fmt.Errorf("%s.key: set data or secretRef", aat))
				continue
			}
			pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.key: not a PEM public key: %w", aat, err))
				continue
			}
			v, err := signature.LoadVerifier(pub, crypto.SHA256)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.key: %w", aat, err))
				continue
			}
			r.authorities = append(r.authorities, authority{name: a.Name, verifier: v})
		}
		p.rules = append(p.rules, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, _ := json.Marshal(spec) // the spec's content identifies cached verdicts
	sum := sha256.Sum256(b)
	p.id = hex.EncodeToString(sum[:8])
	return p, nil
}

// Enforce reports whether a failed verification denies (else it warns).
func (p *Policy) Enforce() bool { return p.enforce }

// globRegexp turns a glob on a canonical repository ("registry/team/*")
// into an anchored regexp: "*" within a path segment, "**" across them.
func globRegexp(glob string) (*regexp.Regexp, error) {
	if glob == "" {
		return nil, errors.New("empty")
	}
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
	// 10,000 entries).
	CacheTTL  time.Duration
	CacheSize int
	// Insecure allows plain-HTTP registries (tests and local registries).
	Insecure bool
	// Transport for registry calls (default http.DefaultTransport).
	Transport http.RoundTripper
	Now       func() time.Time
}

// Verifier verifies images against compiled policies, caching verdicts.
type Verifier struct {
	opts Options

	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	result  Result
	expires time.Time
}

// NewVerifier builds a Verifier.
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
	return &Verifier{opts: opts, cache: map[string]cacheEntry{}}
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
	// Passed are the authorities whose signatures verified; Reason says
	// what failed.
	Passed []string `json:"passed,omitempty"`
	Reason string   `json:"reason,omitempty"`
	// Cached is true when the verdict came from the cache.
	Cached bool `json:"cached,omitempty"`
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
	ref, err := name.ParseReference(image, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	repo := ref.Context().Name()
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
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithTransport(v.opts.Transport)}

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
	var failures []string
	for _, a := range r.authorities {
		_, _, err := cosign.VerifyImageSignatures(ctx, digest, &cosign.CheckOpts{
			SigVerifier:        a.verifier,
			IgnoreTlog:         true, // key authorities verify offline
			IgnoreSCT:          true,
			ClaimVerifier:      cosign.SimpleClaimVerifier,
			RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(ropts...)},
		})
		switch {
		case err == nil:
			res.Passed = append(res.Passed, a.name)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("verifying %s: the registry did not answer within %s: %w", digest, v.opts.Timeout, ctx.Err())
		default:
			failures = append(failures, fmt.Sprintf("%s: %s", a.name, signatureProblem(err)))
		}
	}
	res.Verified = len(res.Passed) > 0 && (!r.all || len(res.Passed) == len(r.authorities))
	switch {
	case res.Verified:
		res.Action = ActionAllow
		res.Pinned = pin
	case p.enforce:
		res.Action = ActionDeny
	default:
		res.Action = ActionWarn
	}
	if !res.Verified {
		need := "any one of"
		if r.all {
			need = "all of"
		}
		res.Reason = fmt.Sprintf("%s is not signed by %s the rule's authorities (%s)", digest.DigestStr(), need, strings.Join(failures, "; "))
	}
	stored := *res
	stored.Pinned = "" // pinned per reference, not per digest
	v.store(key, stored)
	return res, nil
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

func signatureProblem(err error) string {
	var noSigs *cosign.ErrNoSignaturesFound
	if errors.As(err, &noSigs) {
		return "no signatures found"
	}
	var noMatch *cosign.ErrNoMatchingSignatures
	if errors.As(err, &noMatch) {
		return "no signature matches its key"
	}
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}

func (v *Verifier) lookup(key string) (Result, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.cache[key]
	if !ok || !v.opts.Now().Before(e.expires) {
		return Result{}, false
	}
	r := e.result
	r.Passed = append([]string(nil), r.Passed...)
	return r, true
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

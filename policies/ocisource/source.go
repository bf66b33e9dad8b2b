package ocisource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies"
)

// Reasons a policy set is refused, the reason label of
// tollgate_policy_source_failures_total.
const (
	// ReasonRegistry: the registry could not be reached or answered an
	// error; the next poll backs off.
	ReasonRegistry = "registry"
	// ReasonSignature: unsigned, or not signed by a trusted key.
	ReasonSignature = "signature"
	// ReasonArtifact: too large, not a policy set, a digest mismatch.
	ReasonArtifact = "artifact"
	// ReasonParse: the bundle does not unpack or a file does not parse.
	ReasonParse = "parse"
	// ReasonCompile: the policies do not compile (beside the base ones).
	ReasonCompile = "compile"
	// ReasonUnchecked: the check could not run for a passing cause (the
	// cluster could not be read); the set is tried again on the next
	// polls, with backoff, rather than refused for good.
	ReasonUnchecked = "unchecked"
)

// Unchecked marks an error of Options.Check as a passing one: the set was
// not judged, and is checked again on the next polls.
func Unchecked(err error) error { return &unchecked{err} }

type unchecked struct{ err error }

func (u *unchecked) Error() string { return u.err.Error() }
func (u *unchecked) Unwrap() error { return u.err }

// Options configure a Source.
type Options struct {
	// Ref is the policy set followed: oci://HOST/REPO:TAG (a digest
	// pins it).
	Ref string
	// Trust holds the keys a set must be signed by.
	Trust *Trust
	// Registry says how to reach the registry.
	Registry Registry
	// MaxBytes bounds what one pull reads (default DefaultMaxBytes).
	MaxBytes int64
	// Interval is how often the tag is resolved (default 1m); after
	// registry errors the wait doubles, up to MaxBackoff (default 10m).
	Interval, MaxBackoff time.Duration
	// Check judges a verified, parsed set before it replaces the last
	// good one, by loading it as it will run (the server loads its
	// modules, config and objects, and a set that does not load is
	// refused with ReasonCompile); nil compiles its modules alone.
	Check func(ctx context.Context, s *Set) error
	// OnUpdate runs after a new set is accepted.
	OnUpdate func(ctx context.Context, s *Set)
	// OnRefuse runs when a new digest is refused (after the log line and
	// the metric): the server records an Event.
	OnRefuse func(ctx context.Context, digest, reason string, err error)
	// Registerer receives the source's metrics; nil registers none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if o.Ref == "" {
		return errors.New("policy source: no reference")
	}
	if o.Trust == nil {
		return errors.New("policy source: no trusted key (--policy-source-key)")
	}
	if _, err := o.Registry.ParseReference(o.Ref); err != nil {
		return fmt.Errorf("policy source: %w", err)
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Interval < 0 || o.MaxBackoff < 0 {
		return errors.New("policy source: intervals must not be negative")
	}
	if o.Interval == 0 {
		o.Interval = time.Minute
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.Interval)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Source follows a policy set in a registry: each poll resolves the tag,
// and a new digest is verified, pulled, parsed and checked before it
// replaces the last good set, which stays in force when any step fails.
type Source struct {
	opts     Options
	ref      name.Reference
	failures *prometheus.CounterVec
	info     *prometheus.GaugeVec

	mu      sync.Mutex
	current *Set
	// refused is the last digest refused for good (it cannot change: a
	// digest names immutable content), so it is not pulled again.
	refused string
	// reported is the last refusal reported ("digest reason"): an
	// unsigned digest the tag still names is checked again on every poll
	// (a signature may come), but reported once.
	reported string
}

// New checks the options.
func New(opts Options) (*Source, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ref, _ := opts.Registry.ParseReference(opts.Ref)
	s := &Source{opts: opts, ref: ref,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_policy_source_failures_total",
			Help: "New policy sets from the policy source that were refused or could not be fetched, by reason (registry, signature, artifact, parse, compile); the last good set stays in force.",
		}, []string{"reason"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_policy_source_info",
			Help: "1 for the policy set in force: the reference followed and the digest loaded.",
		}, []string{"ref", "digest"}),
	}
	for _, r := range []string{ReasonRegistry, ReasonSignature, ReasonArtifact, ReasonParse, ReasonCompile} {
		s.failures.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.failures); err != nil {
			return nil, fmt.Errorf("policy source metrics: %w", err)
		}
		if err := opts.Registerer.Register(s.info); err != nil {
			return nil, fmt.Errorf("policy source metrics: %w", err)
		}
	}
	return s, nil
}

// Current is the set in force, nil before the first good one (and on a
// nil Source: a server that follows none).
func (s *Source) Current() *Set {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Digest is the digest of the set in force ("" before the first), for
// /version, the decision log and the audit's reports.
func (s *Source) Digest() string {
	if c := s.Current(); c != nil {
		return c.Digest
	}
	return ""
}

// Ref is the reference followed, as given.
func (s *Source) Ref() string { return s.opts.Ref }

// refusal is an error with the reason a set was refused.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// Reason is the reason label of err as Poll returns it ("" when none).
func Reason(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

// Poll resolves the reference once and, when it names a digest other
// than the one in force, verifies, pulls and checks it. It returns
// whether a new set was accepted, and why not when it was refused or the
// registry failed (Reason says which); the last good set stays either way.
func (s *Source) Poll(ctx context.Context) (bool, error) {
	d, err := s.opts.Registry.Resolve(ctx, s.ref)
	if err != nil {
		return false, s.fail(ctx, "", &refusal{ReasonRegistry, err})
	}
	digest := d.DigestStr()
	s.mu.Lock()
	same := (s.current != nil && s.current.Digest == digest) || s.refused == digest
	s.mu.Unlock()
	if same {
		return false, nil
	}
	set, err := pull(ctx, s.opts.Registry, d, s.opts.Trust, s.opts.MaxBytes)
	if err == nil {
		set.Ref = s.opts.Ref
		check := s.opts.Check
		if check == nil {
			check = compileAlone
		}
		if cerr := check(ctx, set); cerr != nil {
			var u *unchecked
			if errors.As(cerr, &u) {
				err = &refusal{ReasonUnchecked, cerr}
			} else {
				err = &refusal{ReasonCompile, cerr}
			}
		}
	}
	if err != nil {
		if r := Reason(err); r == ReasonArtifact || r == ReasonParse || r == ReasonCompile {
			s.mu.Lock()
			s.refused = digest
			s.mu.Unlock()
		}
		return false, s.fail(ctx, digest, err)
	}
	s.mu.Lock()
	s.current = set
	s.reported = ""
	s.mu.Unlock()
	s.info.Reset()
	s.info.WithLabelValues(s.opts.Ref, digest).Set(1)
	s.opts.Logger.InfoContext(ctx, "policy set loaded from the policy source", "ref", s.opts.Ref, "digest", digest,
		"revision", set.Revision, "modules", len(set.Modules), "objects", len(set.Objects))
	if s.opts.OnUpdate != nil {
		s.opts.OnUpdate(ctx, set)
	}
	return true, nil
}

func (s *Source) fail(ctx context.Context, digest string, err error) error {
	reason := Reason(err)
	s.mu.Lock()
	again := digest != "" && s.reported == digest+" "+reason
	s.reported = digest + " " + reason
	s.mu.Unlock()
	if again {
		s.opts.Logger.DebugContext(ctx, "policy set still refused", "digest", digest, "reason", reason, "error", err)
		return err
	}
	s.failures.WithLabelValues(reason).Inc()
	s.opts.Logger.ErrorContext(ctx, "policy set refused; the last good set stays in force", "ref", s.opts.Ref,
		"digest", digest, "inForce", s.Digest(), "reason", reason, "error", err)
	if s.opts.OnRefuse != nil && digest != "" {
		s.opts.OnRefuse(ctx, digest, reason, err)
	}
	return err
}

// Run polls until ctx ends: every Interval, and after registry errors
// with a wait that doubles up to MaxBackoff. The first poll is at once.
func (s *Source) Run(ctx context.Context) error {
	wait := s.opts.Interval
	for {
		_, err := s.Poll(ctx)
		if r := Reason(err); r == ReasonRegistry || r == ReasonUnchecked {
			wait = min(wait*2, s.opts.MaxBackoff)
		} else {
			wait = s.opts.Interval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Pull verifies and reads the policy set ref names, once: what `tollgate
// check --policy-source` judges with.
func Pull(ctx context.Context, reg Registry, ref string, trust *Trust, maxBytes int64) (*Set, error) {
	r, err := reg.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	d, err := reg.Resolve(ctx, r)
	if err != nil {
		return nil, &refusal{ReasonRegistry, err}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	set, err := pull(ctx, reg, d, trust, maxBytes)
	if err != nil {
		return nil, err
	}
	set.Ref = ref
	return set, nil
}

// pull verifies the signature of d, then reads and parses the bundle.
func pull(ctx context.Context, reg Registry, d name.Digest, trust *Trust, maxBytes int64) (*Set, error) {
	if err := reg.Verify(ctx, d, trust); err != nil {
		var se *SignatureError
		if errors.As(err, &se) {
			return nil, &refusal{ReasonSignature, err}
		}
		return nil, &refusal{ReasonRegistry, err}
	}
	blob, err := reg.fetch(ctx, d, maxBytes)
	if err != nil {
		err = fmt.Errorf("%s: %w", d.DigestStr(), err)
		if errorsAsArtifact(err) {
			return nil, &refusal{ReasonArtifact, err}
		}
		return nil, &refusal{ReasonRegistry, err}
	}
	set, err := Unpack("oci", blob)
	if err != nil {
		return nil, &refusal{ReasonParse, fmt.Errorf("%s: %w", d.DigestStr(), err)}
	}
	set.Digest = d.DigestStr()
	return set, nil
}

// compileAlone compiles the set's modules with its data and config.
func compileAlone(ctx context.Context, s *Set) error {
	if len(s.Modules) == 0 {
		return nil
	}
	_, err := policies.New(ctx, policies.Options{Modules: s.Modules, Data: s.Data, Config: s.Config})
	return err
}

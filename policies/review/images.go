package review

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

// ImagePolicy is a compiled TollgateImagePolicy in force.
type ImagePolicy struct {
	Name   string
	Policy *imagesig.Policy
}

// VerdictObserver counts image verdicts (the server's metrics).
type VerdictObserver interface {
	ImageVerdict(policy string, res *imagesig.Result, err error)
}

// ImageGate verifies the images of the objects reviewed against the image
// policies of the set. Mutation resolves each tag once, verifies that
// digest and pins the image to it; review requires a digest and checks it
// was verified, from the verifier's cache or by verifying again. It never
// reads anything a user could set on the object to learn what was
// verified.
//
// Without a Verifier the gate is offline (`tollgate check` without
// --verify-images): no registry is contacted, images a rule matches are
// not judged, and an image no rule of a policy matches gets that policy's
// unmatched action.
type ImageGate struct {
	// Verifier verifies and caches verdicts by digest and policy; nil
	// means offline.
	Verifier *imagesig.Verifier
	// Keychains gives the registry credentials of a pod: its
	// imagePullSecrets and its service account's. Nil means anonymous.
	Keychains KeychainSource
	// Parallel bounds the images verified at once in one request.
	Parallel int
	Logger   *slog.Logger
	// Metrics counts verifications by policy and result; may be nil.
	Metrics VerdictObserver
	// Now is the clock of the unreachable-registry memory.
	Now func() time.Time

	mu sync.Mutex
	// down remembers registries that did not answer, so the requests of
	// the next seconds (the validating webhook after the mutating one, a
	// burst of pods) fail fast instead of each waiting out the deadline.
	down map[string]downRegistry
}

// downFor is how long a registry that did not answer is not asked again.
const downFor = 15 * time.Second

type downRegistry struct {
	until time.Time
	err   error
}

func (g *ImageGate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// registryDown returns the error a registry gave recently, if it is
// remembered as down.
func (g *ImageGate) registryDown(image string) error {
	host := registryHost(image)
	g.mu.Lock()
	defer g.mu.Unlock()
	d, ok := g.down[host]
	if !ok || !g.now().Before(d.until) {
		return nil
	}
	return fmt.Errorf("registry %s is unreachable (not asked again until %s UTC): %w", host, d.until.UTC().Format("15:04:05"), d.err)
}

// noteUnreachable remembers a registry that could not be reached.
func (g *ImageGate) noteUnreachable(image string, err error) {
	if !unreachable(err) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down == nil {
		g.down = map[string]downRegistry{}
	}
	for h, d := range g.down { // keep the memory small
		if !g.now().Before(d.until) {
			delete(g.down, h)
		}
	}
	g.down[registryHost(image)] = downRegistry{until: g.now().Add(downFor), err: err}
}

// unreachable reports whether an error means the registry did not answer
// (refused, timed out), as opposed to answering no.
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "did not answer within")
}

func registryHost(image string) string {
	ref, err := imagesig.ParseReference(image)
	if err != nil {
		return ""
	}
	return ref.Context().RegistryStr()
}

// KeychainSource builds the registry credentials of one object's pods.
type KeychainSource interface {
	Keychain(ctx context.Context, namespace string, podSpec map[string]any) (authn.Keychain, error)
}

// imageCheck is the verification of one distinct image in one request.
type imageCheck struct {
	image    string
	resolved string // as written, with the digest added
	err      error
	results  map[string]*imagesig.Result // by policy name
	errs     map[string]error
}

// judgedImages lists the images of a request the gate judges: on UPDATE
// only those the update brings (an image already in the old object was
// judged when it came in).
func judgedImages(s *Set, in *policies.Input) []policies.ContainerImage {
	imgs := s.Engine.Images(in)
	if in.Operation != "UPDATE" || in.OldObject == nil || len(imgs) == 0 {
		return imgs
	}
	old := map[string]bool{}
	for _, o := range s.Engine.OldImages(in) {
		old[o.List+"/"+o.Container+"/"+o.Image] = true
	}
	return slices.DeleteFunc(imgs, func(c policies.ContainerImage) bool { return old[c.List+"/"+c.Container+"/"+c.Image] })
}

// matched reports whether any policy has a rule for the image, which is
// when the gate needs the registry.
func matched(s *Set, image string) bool {
	for _, p := range s.Images {
		if p.Policy.Matches(image) {
			return true
		}
	}
	return false
}

// verify checks each distinct image once: resolve (when resolve is set
// and the image carries no digest), then every policy on the resolved
// reference.
func (g *ImageGate) verify(ctx context.Context, s *Set, in *policies.Input, imgs []policies.ContainerImage, resolve bool) map[string]*imageCheck {
	checks := map[string]*imageCheck{}
	var todo []*imageCheck
	for _, c := range imgs {
		if checks[c.Image] == nil {
			ic := &imageCheck{image: c.Image, resolved: c.Image, results: map[string]*imagesig.Result{}, errs: map[string]error{}}
			checks[c.Image] = ic
			todo = append(todo, ic)
		}
	}
	var keychain authn.Keychain
	var once sync.Once
	keys := func() authn.Keychain {
		once.Do(func() {
			if g.Keychains == nil {
				return
			}
			kc, err := g.Keychains.Keychain(ctx, in.ObjectNamespace(), podSpec(s, in))
			if err != nil {
				if g.Logger != nil {
					g.Logger.WarnContext(ctx, "reading registry credentials failed; verifying anonymously", "error", err)
				}
			}
			keychain = kc
		})
		return keychain
	}
	sem := make(chan struct{}, max(g.Parallel, 1))
	var wg sync.WaitGroup
	for _, ic := range todo {
		if !matched(s, ic.image) {
			// No rule anywhere: each policy's unmatched action, no registry call.
			for _, p := range s.Images {
				ic.results[p.Name], ic.errs[p.Name] = g.Verifier.Verify(ctx, p.Policy, ic.image, nil)
				g.observe(p.Name, ic.results[p.Name], ic.errs[p.Name])
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if downErr := g.registryDown(ic.image); downErr != nil {
				if !hasDigest(ic.image) {
					ic.err = downErr
					return
				}
				// Verdicts already cached still answer; nothing waits on
				// the registry (the cancelled context ends any call at once).
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				for _, p := range s.Images {
					if ic.results[p.Name], ic.errs[p.Name] = g.Verifier.Verify(cctx, p.Policy, ic.image, nil); ic.errs[p.Name] != nil {
						ic.errs[p.Name] = downErr
					}
					g.observe(p.Name, ic.results[p.Name], ic.errs[p.Name])
				}
				return
			}
			kc := keys()
			if resolve && !hasDigest(ic.image) {
				if ic.resolved, ic.err = g.Verifier.Resolve(ctx, ic.image, kc); ic.err != nil {
					g.noteUnreachable(ic.image, ic.err)
					return
				}
			}
			for _, p := range s.Images {
				ic.results[p.Name], ic.errs[p.Name] = g.Verifier.Verify(ctx, p.Policy, ic.resolved, kc)
				g.observe(p.Name, ic.results[p.Name], ic.errs[p.Name])
				if ic.errs[p.Name] != nil {
					g.noteUnreachable(ic.image, ic.errs[p.Name])
				}
			}
		}()
	}
	wg.Wait()
	return checks
}

// Pins returns the pins of the images every policy verified (or has no
// rule for while another verified it), for the mutating webhook; and
// the warnings of images that could not be verified, which the validating
// webhook turns into its verdict.
func (g *ImageGate) Pins(ctx context.Context, s *Set, in *policies.Input) ([]policies.ImagePin, []string) {
	imgs := judgedImages(s, in)
	if len(s.Images) == 0 || len(imgs) == 0 || g.Verifier == nil {
		return nil, nil // offline: nothing is resolved, nothing pinned
	}
	checks := g.verify(ctx, s, in, imgs, true)
	var pins []policies.ImagePin
	var notes []string
	for _, c := range imgs {
		ic := checks[c.Image]
		if ic.err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", c.Path, ic.err))
			continue
		}
		verified, failed := false, false
		for _, p := range s.Images {
			res, err := ic.results[p.Name], ic.errs[p.Name]
			switch {
			case err != nil || res.Action != imagesig.ActionAllow:
				failed = true
			case res.Verified:
				verified = true
			}
		}
		if verified && !failed {
			pins = append(pins, policies.ImagePin{Image: c, Pinned: ic.resolved})
		}
	}
	return pins, notes
}

// Check judges the images of a request for the validating webhook: an
// image a rule matches must carry a digest, and that digest must verify.
// An image without one is looked up anyway, so the finding says why it
// was not pinned (a registry down, no signature, or a mutating webhook
// that did not run).
func (g *ImageGate) Check(ctx context.Context, s *Set, in *policies.Input) []policies.Finding {
	imgs := judgedImages(s, in)
	if len(s.Images) == 0 || len(imgs) == 0 {
		return nil
	}
	if g.Verifier == nil {
		return g.checkOffline(ctx, s, imgs)
	}
	checks := g.verify(ctx, s, in, imgs, true)
	var findings []policies.Finding
	add := func(c policies.ContainerImage, p ImagePolicy, action, reason string) {
		findings = append(findings, imagesig.Finding(p.Name, c, action, reason))
	}
	for _, c := range imgs {
		ic := checks[c.Image]
		for _, p := range s.Images {
			res, err := ic.results[p.Name], ic.errs[p.Name]
			switch {
			case ic.err != nil:
				if p.Policy.Matches(c.Image) {
					add(c, p, p.Policy.FailAction(), "could not be verified: "+explain(ic.err))
				}
			case err != nil:
				add(c, p, p.Policy.FailAction(), "could not be verified: "+explain(err))
			case res.Action != imagesig.ActionAllow:
				add(c, p, res.Action, res.Reason)
			case res.Verified && !hasDigest(c.Image):
				add(c, p, p.Policy.FailAction(), fmt.Sprintf("%s is not pinned to its digest; it verifies as %s, which the mutating webhook pins (did it run?)", c.Image, ic.resolved))
			}
		}
	}
	return findings
}

// explain adds what to do to a registry error that has a usual cure.
func explain(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "401 Unauthorized") || strings.Contains(msg, "UNAUTHORIZED") || strings.Contains(msg, "403 Forbidden") {
		msg += " (the registry wants credentials: Tollgate reads the pod's imagePullSecrets and its service account's)"
	}
	return msg
}

// hasDigest reports whether a reference names a digest (repo@sha256:...).
func hasDigest(image string) bool {
	ref, err := imagesig.ParseReference(image)
	if err != nil {
		return strings.Contains(image, "@")
	}
	_, ok := ref.(name.Digest)
	return ok
}

// podSpec is the pod spec of the object (a Pod's, or its template's).
func podSpec(s *Set, in *policies.Input) map[string]any {
	tmpl, ok := s.Engine.PodTemplatePath(in.Kind)
	if !ok {
		return nil
	}
	var cur any = in.Object
	if tmpl != "" {
		for _, k := range strings.Split(tmpl, ".") {
			m, _ := cur.(map[string]any)
			cur = m[k]
		}
	}
	m, _ := cur.(map[string]any)
	spec, _ := m["spec"].(map[string]any)
	return spec
}

// offlineVerifier judges images no rule matches: the policy's unmatched
// action, with no registry call.
var offlineVerifier = imagesig.NewVerifier(imagesig.Options{Timeout: time.Second})

// checkOffline judges images without a registry: an image a rule of a
// policy matches needs the registry and is not judged; any other gets the
// policy's unmatched action.
func (g *ImageGate) checkOffline(ctx context.Context, s *Set, imgs []policies.ContainerImage) []policies.Finding {
	var out []policies.Finding
	for _, img := range imgs {
		for _, p := range s.Images {
			if p.Policy.Matches(img.Image) {
				continue
			}
			res, err := offlineVerifier.Verify(ctx, p.Policy, img.Image, nil)
			switch {
			case err != nil:
				out = append(out, imagesig.Finding(p.Name, img, p.Policy.FailAction(), "could not be verified: "+err.Error()))
			case res.Action != imagesig.ActionAllow:
				out = append(out, imagesig.Finding(p.Name, img, res.Action, res.Reason))
			}
		}
	}
	return out
}

func (g *ImageGate) observe(policy string, res *imagesig.Result, err error) {
	if g.Metrics != nil {
		g.Metrics.ImageVerdict(policy, res, err)
	}
}

package loader

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// maxKeySecretBytes bounds a document read from a Secret for an image
// policy (a trusted root with several CAs and logs is a few KiB).
const maxKeySecretBytes = 64 << 10

type loadedImagePolicy struct {
	uid        types.UID
	generation int64
	policy     *imagesig.Policy
	// secrets is true when the policy reads Secrets: it is compiled again
	// on every reload and every imageRecheck, so a rotated key counts.
	secrets bool
}

// imageRecheck is how often image policies that read Secrets, or that did
// not load, are compiled again: a Secret created or rotated after its
// policy is picked up without touching the policy.
const imageRecheck = 10 * time.Second

// imagePolicies compiles the TollgateImagePolicy objects that changed, or
// that read Secrets, and returns those in force, with each object's load
// error (nil when it loaded, or when it is unchanged and in force), and
// whether some should be compiled again in imageRecheck. A policy that no
// longer compiles keeps its last good version in force.
func (l *Loader) imagePolicies(ctx context.Context) ([]review.ImagePolicy, []v1alpha1.TollgateImagePolicy, map[string]error, bool) {
	var list v1alpha1.TollgateImagePolicyList
	if err := l.reader.List(ctx, &list); err != nil {
		if !apimeta.IsNoMatchError(err) {
			l.opts.Logger.ErrorContext(ctx, "listing TollgateImagePolicies failed; the last good ones stay in force", "error", err)
		}
		return l.imagesInForce(), nil, nil, false
	}
	results := map[string]error{}
	live := map[string]bool{}
	recheck := false
	for i := range list.Items {
		p := &list.Items[i]
		live[p.Name] = true
		if lp, ok := l.goodImages[p.Name]; ok && lp.uid == p.UID && lp.generation == p.Generation && !lp.secrets {
			results[p.Name] = nil
			continue
		}
		readsSecrets := false
		compiled, err := imagesig.Compile(ctx, p.Spec, func(ctx context.Context, ref v1alpha1.SecretKeyRef) ([]byte, error) {
			readsSecrets = true
			return l.readKeySecret(ctx, ref)
		})
		results[p.Name] = err
		recheck = recheck || readsSecrets || err != nil
		if err != nil && fromSet(p) {
			l.setProblem(ctx, "TollgateImagePolicy", p, err.Error())
		}
		if err == nil {
			l.goodImages[p.Name] = loadedImagePolicy{uid: p.UID, generation: p.Generation, policy: compiled, secrets: readsSecrets}
		} else if lp, ok := l.goodImages[p.Name]; ok && lp.uid != p.UID {
			delete(l.goodImages, p.Name) // a new object: the old one's version does not carry over
		}
	}
	for name := range l.goodImages {
		if !live[name] {
			delete(l.goodImages, name)
		}
	}
	return l.imagesInForce(), list.Items, results, recheck
}

func (l *Loader) imagesInForce() []review.ImagePolicy {
	out := make([]review.ImagePolicy, 0, len(l.goodImages))
	for name, lp := range l.goodImages {
		out = append(out, review.ImagePolicy{Name: name, Policy: lp.policy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// readKeySecret reads what an image policy keeps in a Secret: a public
// key, Fulcio roots, a Rekor key or a trusted root.
func (l *Loader) readKeySecret(ctx context.Context, ref v1alpha1.SecretKeyRef) ([]byte, error) {
	if l.opts.Secrets == nil {
		return nil, fmt.Errorf("secret %s/%s: Secrets cannot be read", ref.Namespace, ref.Name)
	}
	if ref.Namespace == "" || ref.Name == "" || ref.Key == "" {
		return nil, fmt.Errorf("namespace, name and key are required")
	}
	var s corev1.Secret
	if err := l.opts.Secrets.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, &s); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	v, ok := s.Data[ref.Key]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s has no key %q", ref.Namespace, ref.Name, ref.Key)
	}
	if len(v) > maxKeySecretBytes {
		return nil, fmt.Errorf("secret %s/%s key %q is over %d bytes", ref.Namespace, ref.Name, ref.Key, maxKeySecretBytes)
	}
	return v, nil
}

// writeImageStatuses records on each TollgateImagePolicy whether it loaded.
func (l *Loader) writeImageStatuses(ctx context.Context, items []v1alpha1.TollgateImagePolicy, results map[string]error) {
	for i := range items {
		p := &items[i]
		err, ok := results[p.Name]
		if !ok || fromSet(p) {
			continue
		}
		lp, hasGood := l.goodImages[p.Name]
		l.setObjectStatus(ctx, p, &p.Status, loadedCondition(p.Generation, err, lp.generation, hasGood))
	}
}

// RecheckImages compiles again the image policies that read Secrets or did
// not load, without rebuilding the engine, and publishes a new state when
// the image policies in force changed.
func (l *Loader) RecheckImages(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur := l.opts.State.Load()
	if !l.recheckImages || cur == nil {
		return
	}
	images, items, results, recheck := l.imagePolicies(ctx)
	l.recheckImages = recheck
	if !sameImagePolicies(images, cur.Images) {
		l.generation++
		st := review.NewSet(cur.Engine, cur.Exceptions, l.generation, cur.Plugins...)
		st.Images = images
		l.opts.State.Store(st)
		l.opts.Logger.InfoContext(ctx, "image policies reloaded", "generation", l.generation, "imagePolicies", len(images))
	}
	if l.opts.WriteStatus() {
		l.writeImageStatuses(ctx, items, results)
	}
}

func sameImagePolicies(a, b []review.ImagePolicy) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Policy.ID() != b[i].Policy.ID() {
			return false
		}
	}
	return true
}

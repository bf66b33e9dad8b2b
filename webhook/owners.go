package webhook

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
)

// OwnerGetter finds the controller an object claims in its
// ownerReferences, so that a Pod, ReplicaSet or Job is judged at its
// controller only when that controller exists: an ownerReference is written
// by whoever creates the object and proves nothing by itself. An error
// means "could not read" and fails the request; a controller that does not
// exist, or has another UID, is not an error.
type OwnerGetter interface {
	Owner(ctx context.Context, namespace string, ref policies.OwnerRef) (bool, error)
}

var _ OwnerGetter = (*CachedNamespaces)(nil)

// Owner implements OwnerGetter: it reads the owner's metadata from the
// cache, and with a live GET when the cache does not have it or has another
// object of that name (the Deployment controller creates a ReplicaSet and
// its pods an instant apart, before the informer sees the ReplicaSet).
// The version read is v1, the one version every controller kind Tollgate
// trusts is served at, whatever version the reference names.
func (c *CachedNamespaces) Owner(ctx context.Context, namespace string, ref policies.OwnerRef) (bool, error) {
	gvk := schema.GroupVersionKind{Group: ref.Group(), Version: "v1", Kind: ref.Kind}
	key := client.ObjectKey{Namespace: namespace, Name: ref.Name}
	read := func(r client.Reader) (bool, error) {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		if err := r.Get(ctx, key, m); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, fmt.Errorf("reading %s %s/%s, the controller the object names: %w", ref.Kind, namespace, ref.Name, err)
		}
		return string(m.UID) == ref.UID, nil
	}
	found, err := read(c.Cache)
	if err != nil || found {
		return found, err
	}
	return read(c.Live)
}

// resolveController sets in.Controller when the controller the object
// claims is found; with no OwnerGetter, every object is judged as itself.
func (r *Reviewer) resolveController(ctx context.Context, in *policies.Input) error {
	if r.opts.Owners == nil {
		return nil
	}
	ref, ok := policies.ClaimedController(in.Kind, in.Object)
	if !ok {
		return nil
	}
	found, err := r.opts.Owners.Owner(ctx, in.ObjectNamespace(), ref)
	if err != nil {
		return err
	}
	if found {
		in.Controller = &ref
	}
	return nil
}

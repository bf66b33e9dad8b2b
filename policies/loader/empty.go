package loader

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// errEmptyCluster is what a write to the empty cluster returns.
var errEmptyCluster = errors.New("the set is checked in an empty cluster, which takes no writes")

// emptyCluster is a cluster that holds nothing: every list is empty,
// every get is not found, every write is refused. CheckBase loads a
// policy set against it, so the set is judged on what it holds alone.
type emptyCluster struct {
	scheme *runtime.Scheme
	mapper apimeta.RESTMapper
}

var _ client.Client = emptyCluster{}

func (e emptyCluster) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	gvk, err := e.GroupVersionKindFor(obj)
	if err != nil {
		return err
	}
	return apierrors.NewNotFound(gvk.GroupVersion().WithResource(gvk.Kind).GroupResource(), key.Name)
}

func (e emptyCluster) List(_ context.Context, list client.ObjectList, _ ...client.ListOption) error {
	return apimeta.SetList(list, nil)
}

func (emptyCluster) Create(context.Context, client.Object, ...client.CreateOption) error {
	return errEmptyCluster
}

func (emptyCluster) Delete(context.Context, client.Object, ...client.DeleteOption) error {
	return errEmptyCluster
}

func (emptyCluster) Update(context.Context, client.Object, ...client.UpdateOption) error {
	return errEmptyCluster
}

func (emptyCluster) Patch(context.Context, client.Object, client.Patch, ...client.PatchOption) error {
	return errEmptyCluster
}

func (emptyCluster) Apply(context.Context, runtime.ApplyConfiguration, ...client.ApplyOption) error {
	return errEmptyCluster
}

func (emptyCluster) DeleteAllOf(context.Context, client.Object, ...client.DeleteAllOfOption) error {
	return errEmptyCluster
}

func (emptyCluster) Status() client.SubResourceWriter { return emptySubResource{} }

func (emptyCluster) SubResource(string) client.SubResourceClient { return emptySubResource{} }

func (e emptyCluster) Scheme() *runtime.Scheme { return e.scheme }

func (e emptyCluster) RESTMapper() apimeta.RESTMapper { return e.mapper }

func (e emptyCluster) GroupVersionKindFor(obj runtime.Object) (schema.GroupVersionKind, error) {
	return apiutil.GVKForObject(obj, e.scheme)
}

func (e emptyCluster) IsObjectNamespaced(obj runtime.Object) (bool, error) {
	return apiutil.IsObjectNamespaced(obj, e.scheme, e.mapper)
}

// emptySubResource is the empty cluster's subresources: none to read,
// no writes.
type emptySubResource struct{}

func (emptySubResource) Get(_ context.Context, obj, _ client.Object, _ ...client.SubResourceGetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{}, obj.GetName())
}

func (emptySubResource) Create(context.Context, client.Object, client.Object, ...client.SubResourceCreateOption) error {
	return errEmptyCluster
}

func (emptySubResource) Update(context.Context, client.Object, ...client.SubResourceUpdateOption) error {
	return errEmptyCluster
}

func (emptySubResource) Patch(context.Context, client.Object, client.Patch, ...client.SubResourcePatchOption) error {
	return errEmptyCluster
}

func (emptySubResource) Apply(context.Context, runtime.ApplyConfiguration, ...client.SubResourceApplyOption) error {
	return errEmptyCluster
}

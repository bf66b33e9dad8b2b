package loader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// AnnotationPolicySet marks a policy object held outside the cluster (in
// a policy set pulled from a registry) as the loader sees it; its value
// names the set. Such an object is enforced as if it were in the cluster,
// but its status is never written and what does not load on it is logged
// rather than recorded as an Event.
const AnnotationPolicySet = "tollgate.dev/policy-set-object"

// overlay is the cluster as the loader and the formats read it: every
// List answers with the cluster's objects of the list's kind and the set's
// objects of that kind (group and kind; the set's object is served at the
// list's version, its fields as they are). A set's object replaces a
// cluster object of the same namespace and name. A kind the cluster does
// not serve (a constraint kind whose CRD is not created yet) lists the
// set's objects alone. Everything else, writes included, goes to the
// cluster.
type overlay struct {
	client.Client
	// lister answers the cluster's part of List (the Client, or another
	// reader of the same cluster: over).
	lister client.Reader
	objs   map[schema.GroupKind][]*unstructured.Unstructured
}

// newOverlay prepares objs: each is marked with AnnotationPolicySet (set
// as the value), given a UID and resourceVersion that change with its
// content (so a new version of the set compiles what changed, and only
// that, and no last good version of another content stands in for it)
// and, if it has none, generation 1. Kyverno policies not annotated otherwise are judged
// by Tollgate at admission (AnnotationEngine): Kyverno's own admission
// controller never sees them.
func newOverlay(c client.Client, objs []Object, set string) (*overlay, error) {
	o := &overlay{Client: c, lister: c, objs: map[schema.GroupKind][]*unstructured.Unstructured{}}
	for _, obj := range objs {
		u := (&unstructured.Unstructured{Object: obj.Object}).DeepCopy()
		gvk := u.GroupVersionKind()
		if gvk.Kind == "" || u.GetName() == "" {
			return nil, fmt.Errorf("%s: an object needs apiVersion, kind and metadata.name", obj.Source)
		}
		raw, err := json.Marshal(u.Object)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.Source, err)
		}
		sum := sha256.Sum256(raw)
		annotations := u.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[AnnotationPolicySet] = set
		if FormatOf(u.Object) == PluginKyverno && annotations[AnnotationEngine] == "" {
			annotations[AnnotationEngine] = EngineTollgate
		}
		u.SetAnnotations(annotations)
		version := hex.EncodeToString(sum[:16])
		u.SetUID(types.UID("policy-set-" + version))
		u.SetResourceVersion(version)
		if u.GetGeneration() == 0 {
			u.SetGeneration(1)
		}
		o.objs[gvk.GroupKind()] = append(o.objs[gvk.GroupKind()], u)
	}
	return o, nil
}

// over is the overlay listing the cluster with r (Kyverno's reader, which
// logs API warnings once).
func (o *overlay) over(r client.Reader) client.Reader {
	cp := *o
	cp.lister = r
	return &cp
}

// List implements client.Reader.
func (o *overlay) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	gvk, err := apiutil.GVKForObject(list, o.Scheme())
	if err != nil {
		return o.lister.List(ctx, list, opts...)
	}
	gk := schema.GroupKind{Group: gvk.Group, Kind: strings.TrimSuffix(gvk.Kind, "List")}
	extra := o.objs[gk]
	if len(extra) == 0 {
		return o.lister.List(ctx, list, opts...)
	}
	if err := o.lister.List(ctx, list, opts...); err != nil {
		if !apimeta.IsNoMatchError(err) && !apierrors.IsNotFound(err) {
			return err
		}
		if err := apimeta.SetList(list, nil); err != nil {
			return err
		}
	}
	lo := (&client.ListOptions{}).ApplyOptions(opts)
	var mine []*unstructured.Unstructured
	shadowed := map[string]bool{}
	for _, u := range extra {
		if lo.Namespace != "" && u.GetNamespace() != lo.Namespace {
			continue
		}
		if lo.LabelSelector != nil && !lo.LabelSelector.Matches(labels.Set(u.GetLabels())) {
			continue
		}
		mine = append(mine, u)
		shadowed[u.GetNamespace()+"/"+u.GetName()] = true
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return err
	}
	out := make([]runtime.Object, 0, len(items)+len(mine))
	for _, it := range items {
		m, err := apimeta.Accessor(it)
		if err != nil || !shadowed[m.GetNamespace()+"/"+m.GetName()] {
			out = append(out, it)
		}
	}
	_, untyped := list.(*unstructured.UnstructuredList)
	item := gvk.GroupVersion().WithKind(gk.Kind)
	for _, u := range mine {
		u = u.DeepCopy()
		u.SetAPIVersion(item.GroupVersion().String())
		if untyped {
			out = append(out, u)
			continue
		}
		obj, err := o.Scheme().New(item)
		if err != nil {
			return fmt.Errorf("policy set object %s %s: %w", gk.Kind, u.GetName(), err)
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
			return fmt.Errorf("policy set object %s %s: %w", gk.Kind, u.GetName(), err)
		}
		out = append(out, obj)
	}
	return apimeta.SetList(list, out)
}

// fromSet says whether obj is a policy set's object (AnnotationPolicySet).
func fromSet(obj interface{ GetAnnotations() map[string]string }) bool {
	_, ok := obj.GetAnnotations()[AnnotationPolicySet]
	return ok
}

package console

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxItems bounds what one page reads of one kind: a cluster cannot make
// the console hold unbounded data.
const maxItems = 20000

// reader reads with the caller's credentials. A namespaced kind the caller
// may not list across the cluster is read namespace by namespace, in the
// namespaces they may list it in; those they may not are counted as
// hidden, never shown.
type reader struct {
	c client.Client
	// namespace is the kubeconfig context's, read when not even the
	// namespaces can be listed.
	namespace string
}

// visible is what a list returned, and what it could not read.
type visible struct {
	// Hidden counts the namespaces the caller may not list the kind in.
	Hidden int
	// Missing is set when the kind is not served (its CRD not installed).
	Missing bool
	// Truncated is set when the kind has more than maxItems objects.
	Truncated bool
}

// list reads every object of a namespaced or cluster-scoped kind the
// caller may read, in pages of 500, into list.
func (r *reader) list(ctx context.Context, list client.ObjectList, namespaced bool) (visible, error) {
	var v visible
	err := r.pages(ctx, list, &v)
	switch {
	case err == nil:
		return v, nil
	case apimeta.IsNoMatchError(err) || apierrors.IsNotFound(err):
		v.Missing = true
		return v, nil
	case !apierrors.IsForbidden(err) || !namespaced:
		if apierrors.IsForbidden(err) {
			v.Hidden = 1
			return v, nil
		}
		return v, err
	}
	// Not allowed across the cluster: namespace by namespace.
	namespaces, err := r.namespaces(ctx)
	if err != nil {
		return v, err
	}
	var items []runtime.Object
	for _, ns := range namespaces {
		one, ok := list.DeepCopyObject().(client.ObjectList)
		if !ok {
			return v, errors.New("not a list")
		}
		err := r.pages(ctx, one, &v, client.InNamespace(ns))
		if apierrors.IsForbidden(err) {
			v.Hidden++
			continue
		}
		if err != nil {
			return v, err
		}
		got, err := apimeta.ExtractListWithAlloc(one)
		if err != nil {
			return v, err
		}
		items = append(items, got...)
		if len(items) > maxItems {
			v.Truncated = true
			break
		}
	}
	return v, apimeta.SetList(list, items)
}

// pages lists into list, following continue tokens, up to maxItems.
func (r *reader) pages(ctx context.Context, list client.ObjectList, v *visible, opts ...client.ListOption) error {
	var all []runtime.Object
	cont := ""
	for {
		page, ok := list.DeepCopyObject().(client.ObjectList)
		if !ok {
			return errors.New("not a list")
		}
		o := append(slices.Clone(opts), client.Limit(500))
		if cont != "" {
			o = append(o, client.Continue(cont))
		}
		if err := r.c.List(ctx, page, o...); err != nil {
			return err
		}
		got, err := apimeta.ExtractListWithAlloc(page)
		if err != nil {
			return err
		}
		all = append(all, got...)
		cont = page.GetContinue()
		if cont == "" {
			break
		}
		if len(all) >= maxItems {
			v.Truncated = true
			break
		}
	}
	return apimeta.SetList(list, all)
}

// namespaces the caller can see: all of them when they may list
// namespaces, else the kubeconfig context's.
func (r *reader) namespaces(ctx context.Context) ([]string, error) {
	var list corev1.NamespaceList
	err := r.c.List(ctx, &list)
	if apierrors.IsForbidden(err) {
		if r.namespace == "" {
			return nil, nil
		}
		return []string{r.namespace}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Items))
	for _, ns := range list.Items {
		out = append(out, ns.Name)
	}
	return out, nil
}

// namespaceLabels are the labels of the namespaces the caller may read
// (team, cost-center), for grouping.
func (r *reader) namespaceLabels(ctx context.Context) map[string]map[string]string {
	var list corev1.NamespaceList
	out := map[string]map[string]string{}
	if err := r.c.List(ctx, &list); err != nil {
		return out
	}
	for _, ns := range list.Items {
		out[ns.Name] = ns.Labels
	}
	return out
}

// reportKinds are the policy report APIs, newest first, with their
// namespaced and cluster kinds.
var reportKinds = []struct {
	gv                  schema.GroupVersion
	namespaced, cluster string
}{
	{schema.GroupVersion{Group: "openreports.io", Version: "v1alpha1"}, "Report", "ClusterReport"},
	{schema.GroupVersion{Group: "wgpolicyk8s.io", Version: "v1alpha2"}, "PolicyReport", "ClusterPolicyReport"},
}

// reports reads every policy report the caller may read, of the first
// API served.
func (r *reader) reports(ctx context.Context) ([]unstructured.Unstructured, visible, error) {
	var total visible
	for _, k := range reportKinds {
		var out []unstructured.Unstructured
		served := false
		for _, kind := range []struct {
			name       string
			namespaced bool
		}{{k.namespaced, true}, {k.cluster, false}} {
			var list unstructured.UnstructuredList
			list.SetGroupVersionKind(k.gv.WithKind(kind.name + "List"))
			v, err := r.list(ctx, &list, kind.namespaced)
			if err != nil {
				return nil, total, fmt.Errorf("reading %s: %w", kind.name, err)
			}
			if !v.Missing {
				served = true
			}
			total.Hidden += v.Hidden
			total.Truncated = total.Truncated || v.Truncated
			out = append(out, list.Items...)
		}
		if served {
			return out, total, nil
		}
	}
	total.Missing = true
	return nil, total, nil
}

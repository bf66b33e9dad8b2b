package vap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// This file holds the stand-ins for a cluster that the API server's policy
// code asks for: a namespace lister, a client behind it, param informers,
// an authorizer and the kind-to-resource mapping.

// namespaceLister serves the Namespace objects the evaluator knows of. A
// name it does not know gets a Namespace with only that name and the
// kubernetes.io/metadata.name label, which the API server sets on every
// namespace: offline, "not listed" means "not known", not "absent".
type namespaceLister struct {
	known map[string]*corev1.Namespace
	// request is the Namespace given with the input; it wins over known.
	request *corev1.Namespace
}

var _ listersv1.NamespaceLister = (*namespaceLister)(nil)

func (l *namespaceLister) List(selector labels.Selector) ([]*corev1.Namespace, error) {
	var out []*corev1.Namespace
	for _, ns := range l.known {
		if selector.Matches(labels.Set(ns.Labels)) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func (l *namespaceLister) Get(name string) (*corev1.Namespace, error) {
	if name == "" {
		return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	if l.request != nil && l.request.Name == name {
		return l.request, nil
	}
	if ns, ok := l.known[name]; ok {
		return ns, nil
	}
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelMetadataName: name}},
	}, nil
}

// toNamespace converts a JSON-shaped Namespace object. It gets the
// kubernetes.io/metadata.name label if it lacks it, as every Namespace
// stored by the API server has it: a manifest read from a file does not.
func toNamespace(obj map[string]any) (*corev1.Namespace, error) {
	ns := &corev1.Namespace{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(normalize(obj).(map[string]any), ns); err != nil {
		return nil, err
	}
	if ns.Name != "" && ns.Labels[corev1.LabelMetadataName] != ns.Name {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	return ns, nil
}

// offlineClient is the client the namespace matcher falls back to when its
// lister misses. namespaceLister never misses for a non-empty name, so this
// only answers "not found"; every other method of the embedded nil
// interface panics, and the policy code calls none of them.
type offlineClient struct{ kubernetes.Interface }

func (offlineClient) CoreV1() corev1client.CoreV1Interface { return offlineCoreV1{} }

type offlineCoreV1 struct{ corev1client.CoreV1Interface }

func (offlineCoreV1) Namespaces() corev1client.NamespaceInterface { return offlineNamespaces{} }

type offlineNamespaces struct {
	corev1client.NamespaceInterface
}

func (offlineNamespaces) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.Namespace, error) {
	return nil, apierrors.NewNotFound(corev1.Resource("namespaces"), name)
}

// paramSet is one snapshot of the param objects, by group and kind.
type paramSet struct {
	kinds map[schema.GroupKind]*paramKind
}

// paramKind holds the params of one kind: an indexer, the informer the
// API server's param collection reads it through, and whether the kind is
// namespaced as far as the objects tell.
type paramKind struct {
	informer informers.GenericInformer
	// namespaced and clusterScoped say whether any object of the kind
	// came with, or without, a namespace.
	namespaced, clusterScoped bool
}

func newParamSet(objs []map[string]any, mapper *kindMapper) (*paramSet, error) {
	ps := &paramSet{kinds: map[schema.GroupKind]*paramKind{}}
	var errs []error
	for i, obj := range objs {
		u := &unstructured.Unstructured{Object: normalize(obj).(map[string]any)}
		gvk := u.GroupVersionKind()
		if gvk.Kind == "" || u.GetName() == "" {
			errs = append(errs, fmt.Errorf("param %d: apiVersion, kind and metadata.name are required", i))
			continue
		}
		gk := gvk.GroupKind()
		pk := ps.kind(gk, mapper)
		if u.GetNamespace() != "" {
			pk.namespaced = true
		} else {
			pk.clusterScoped = true
		}
		if err := pk.informer.Informer().GetIndexer().Add(u); err != nil {
			errs = append(errs, fmt.Errorf("param %s %s: %w", gvk.Kind, u.GetName(), err))
		}
	}
	return ps, errors.Join(errs...)
}

// kind returns the params of gk, creating an empty store if there are
// none: a paramKind with no objects must answer "not found" (and let
// parameterNotFoundAction decide), not "unknown kind".
func (ps *paramSet) kind(gk schema.GroupKind, mapper *kindMapper) *paramKind {
	if pk, ok := ps.kinds[gk]; ok {
		return pk
	}
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	resource := mapper.resource(gk.WithVersion(""))
	pk := &paramKind{informer: staticInformer{indexer: indexer, lister: cache.NewGenericLister(indexer, resource.GroupResource())}}
	ps.kinds[gk] = pk
	return pk
}

// lookup returns the informer and scope for a policy's paramKind. The scope
// comes from the mapper when it knows the kind, else from the objects,
// else it is namespaced (as ConfigMaps and most param CRDs are).
func (ps *paramSet) lookup(gvk schema.GroupVersionKind, mapper *kindMapper) (informers.GenericInformer, meta.RESTScope) {
	pk, ok := ps.kinds[gvk.GroupKind()]
	if !ok {
		// Not stored: the set is shared by concurrent evaluations, so
		// hand out an empty informer rather than adding one.
		indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		pk = &paramKind{informer: staticInformer{indexer: indexer, lister: cache.NewGenericLister(indexer, mapper.resource(gvk).GroupResource())}}
	}
	switch mapper.scope(gvk) {
	case scopeCluster:
		return pk.informer, meta.RESTScopeRoot
	case scopeNamespaced:
		return pk.informer, meta.RESTScopeNamespace
	}
	if pk.clusterScoped && !pk.namespaced {
		return pk.informer, meta.RESTScopeRoot
	}
	return pk.informer, meta.RESTScopeNamespace
}

// staticInformer is an informer over a fixed set of objects: always synced,
// never watching.
type staticInformer struct {
	indexer cache.Indexer
	lister  cache.GenericLister
}

var _ informers.GenericInformer = staticInformer{}

func (s staticInformer) Informer() cache.SharedIndexInformer {
	return syncedInformer{indexer: s.indexer}
}
func (s staticInformer) Lister() cache.GenericLister { return s.lister }

// syncedInformer answers the two questions the param collection asks of
// an informer; the embedded nil interface panics on any other.
type syncedInformer struct {
	cache.SharedIndexInformer
	indexer cache.Indexer
}

func (syncedInformer) HasSynced() bool             { return true }
func (s syncedInformer) GetIndexer() cache.Indexer { return s.indexer }

// offlineAuthorizer is the authorizer when none is given: it has no
// opinion and says why, so CEL authorizer checks are not allowed() and
// report errored().
type offlineAuthorizer struct{}

var errNoAuthorizer = errors.New("no authorizer: the policy is evaluated outside the cluster")

func (offlineAuthorizer) Authorize(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	return authorizer.DecisionNoOpinion, "", errNoAuthorizer
}

type scope int

const (
	scopeUnknown scope = iota
	scopeNamespaced
	scopeCluster
)

// kindMapper maps kinds to resources and scopes: through the cluster's
// RESTMapper when there is one, else through what is known of the
// built-in kinds.
type kindMapper struct {
	mapper meta.RESTMapper
}

func (m *kindMapper) resource(gvk schema.GroupVersionKind) schema.GroupVersionResource {
	if m.mapper != nil {
		if mapping, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			return mapping.Resource
		}
	}
	if gvk.Group == "" && gvk.Kind == "Endpoints" {
		return gvk.GroupVersion().WithResource("endpoints")
	}
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural
}

func (m *kindMapper) scope(gvk schema.GroupVersionKind) scope {
	if m.mapper != nil {
		if mapping, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			if mapping.Scope.Name() == meta.RESTScopeNameRoot {
				return scopeCluster
			}
			return scopeNamespaced
		}
	}
	if clusterScopedKinds[gvk.GroupKind()] {
		return scopeCluster
	}
	if builtinGroup(gvk.Group) {
		return scopeNamespaced
	}
	return scopeUnknown
}

// builtinGroup reports whether kube-apiserver itself serves a group (so
// its cluster-scoped kinds are listed in clusterScopedKinds).
func builtinGroup(group string) bool { return builtinGroups[group] }

var builtinGroups = map[string]bool{
	"": true, "apps": true, "batch": true, "autoscaling": true, "policy": true, "extensions": true,
	"admissionregistration.k8s.io": true, "apiextensions.k8s.io": true, "apiregistration.k8s.io": true,
	"authentication.k8s.io": true, "authorization.k8s.io": true, "certificates.k8s.io": true,
	"coordination.k8s.io": true, "discovery.k8s.io": true, "events.k8s.io": true,
	"flowcontrol.apiserver.k8s.io": true, "internal.apiserver.k8s.io": true, "networking.k8s.io": true,
	"node.k8s.io": true, "rbac.authorization.k8s.io": true, "resource.k8s.io": true,
	"scheduling.k8s.io": true, "storage.k8s.io": true, "storagemigration.k8s.io": true,
}

// clusterScopedKinds are the cluster-scoped kinds kube-apiserver 1.36
// serves; the other kinds of the built-in groups are namespaced.
var clusterScopedKinds = map[schema.GroupKind]bool{
	{Kind: "Namespace"}:        true,
	{Kind: "Node"}:             true,
	{Kind: "PersistentVolume"}: true,
	{Kind: "ComponentStatus"}:  true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "storage.k8s.io", Kind: "CSINode"}:                                        true,
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"}:                               true,
	{Group: "storage.k8s.io", Kind: "VolumeAttributesClass"}:                          true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicy"}:          true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingAdmissionPolicyBinding"}:   true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "networking.k8s.io", Kind: "IPAddress"}:                                   true,
	{Group: "networking.k8s.io", Kind: "ServiceCIDR"}:                                 true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}:                 true,
	{Group: "certificates.k8s.io", Kind: "ClusterTrustBundle"}:                        true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:                       true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}:       true,
	{Group: "authentication.k8s.io", Kind: "TokenReview"}:                             true,
	{Group: "authentication.k8s.io", Kind: "SelfSubjectReview"}:                       true,
	{Group: "authorization.k8s.io", Kind: "SubjectAccessReview"}:                      true,
	{Group: "authorization.k8s.io", Kind: "SelfSubjectAccessReview"}:                  true,
	{Group: "authorization.k8s.io", Kind: "SelfSubjectRulesReview"}:                   true,
	{Group: "resource.k8s.io", Kind: "DeviceClass"}:                                   true,
	{Group: "resource.k8s.io", Kind: "ResourceSlice"}:                                 true,
	{Group: "resource.k8s.io", Kind: "DeviceTaintRule"}:                               true,
	{Group: "internal.apiserver.k8s.io", Kind: "StorageVersion"}:                      true,
	{Group: "storagemigration.k8s.io", Kind: "StorageVersionMigration"}:               true,
}

// excludedResources are the resources the API server never runs admission
// policies on: the policy and binding resources themselves (kept out of
// reach of the policies they configure) and the non-persisted review
// resources kube-apiserver excludes.
var excludedResources = map[schema.GroupResource]bool{
	{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies"}:       true,
	{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicybindings"}: true,
	{Group: "admissionregistration.k8s.io", Resource: "mutatingadmissionpolicies"}:         true,
	{Group: "admissionregistration.k8s.io", Resource: "mutatingadmissionpolicybindings"}:   true,
	{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"}:                       true,
	{Group: "authentication.k8s.io", Resource: "tokenreviews"}:                             true,
	{Group: "authorization.k8s.io", Resource: "localsubjectaccessreviews"}:                 true,
	{Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}:                  true,
	{Group: "authorization.k8s.io", Resource: "selfsubjectrulesreviews"}:                   true,
	{Group: "authorization.k8s.io", Resource: "subjectaccessreviews"}:                      true,
}

// normalize deep-copies a JSON-shaped value into the form the API server's
// JSON decoder produces and CEL accepts: integers as int64, other numbers
// as float64. A float64 with an integral value becomes int64, as the JSON
// "3" it was most likely decoded from would.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, err := v.Float64()
		if err != nil {
			return v.String()
		}
		return normalize(f)
	case float64:
		if v == math.Trunc(v) && v >= math.MinInt64 && v < math.MaxInt64 {
			return int64(v)
		}
		return v
	case float32:
		return normalize(float64(v))
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case uint32:
		return int64(v)
	case map[string]string:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = e
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out
	}
	return v
}

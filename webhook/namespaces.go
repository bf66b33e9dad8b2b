package webhook

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NamespaceGetter reads a Namespace object. An error means "could not
// read", and the request then fails (the webhook's failure policy applies);
// it never means "no labels".
type NamespaceGetter interface {
	Namespace(ctx context.Context, name string) (map[string]any, error)
}

// CachedNamespaces reads Namespaces from an informer cache and falls back to
// a live GET when the cache does not have one yet (a namespace created an
// instant ago, before the informer saw it).
type CachedNamespaces struct {
	Cache client.Reader
	Live  client.Reader
}

var _ NamespaceGetter = (*CachedNamespaces)(nil)

// Namespace implements NamespaceGetter.
func (c *CachedNamespaces) Namespace(ctx context.Context, name string) (map[string]any, error) {
	var ns corev1.Namespace
	err := c.Cache.Get(ctx, client.ObjectKey{Name: name}, &ns)
	if apierrors.IsNotFound(err) {
		err = c.Live.Get(ctx, client.ObjectKey{Name: name}, &ns)
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return namespaceMap(&ns)
}

// namespaceMap is the JSON shape policies see as input.namespace.
func namespaceMap(ns *corev1.Namespace) (map[string]any, error) {
	view := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   namespaceMetadata `json:"metadata"`
	}{"v1", "Namespace", namespaceMetadata{Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations}}
	b, err := json.Marshal(view)
	if err != nil {
		return nil, fmt.Errorf("encoding namespace %s: %w", ns.Name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("encoding namespace %s: %w", ns.Name, err)
	}
	return m, nil
}

type namespaceMetadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

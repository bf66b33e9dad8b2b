package gatekeeper

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/gatekeeper/v3/pkg/target"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// AddData adds or replaces obj in data.inventory, where referential
// templates read the cluster (data.inventory.namespace[ns][apiVersion][kind][name]
// and data.inventory.cluster[apiVersion][kind][name], as in Gatekeeper).
// A Namespace added here is also what a namespaceSelector consults when
// an input comes without its Namespace. Safe for concurrent use.
func (e *Evaluator) AddData(ctx context.Context, obj map[string]any) error {
	if e.client == nil {
		return errNoClient
	}
	u, err := dataObject(obj)
	if err != nil {
		return err
	}
	if _, err := e.client.AddData(ctx, u); err != nil {
		return fmt.Errorf("adding %s %s to the inventory: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// RemoveData removes obj from data.inventory. Safe for concurrent use.
func (e *Evaluator) RemoveData(ctx context.Context, obj map[string]any) error {
	if e.client == nil {
		return errNoClient
	}
	u, err := dataObject(obj)
	if err != nil {
		return err
	}
	if _, err := e.client.RemoveData(ctx, u); err != nil {
		return fmt.Errorf("removing %s %s from the inventory: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// WipeData empties data.inventory, as before a full resync.
func (e *Evaluator) WipeData(ctx context.Context) error {
	if e.client == nil {
		return errNoClient
	}
	if _, err := e.client.RemoveData(ctx, target.WipeData()); err != nil {
		return fmt.Errorf("wiping the inventory: %w", err)
	}
	return nil
}

// errNoClient is returned by an Evaluator whose Compile could not even
// create the constraint client.
var errNoClient = errors.New("gatekeeper: no constraint client (Compile failed)")

func dataObject(obj map[string]any) (*unstructured.Unstructured, error) {
	if obj == nil {
		return nil, errors.New("inventory: not an object")
	}
	o, _, err := normalize(obj)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return &unstructured.Unstructured{Object: o}, nil
}

package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// scaledKinds are the resources whose scale subresource is judged, with
// the kind read for each: only these parents are ever read.
var scaledKinds = map[schema.GroupResource]schema.GroupVersionKind{
	{Group: "apps", Resource: "deployments"}:  {Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Resource: "replicasets"}:  {Group: "apps", Version: "v1", Kind: "ReplicaSet"},
	{Group: "apps", Resource: "statefulsets"}: {Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Resource: "replicationcontrollers"}:      {Version: "v1", Kind: "ReplicationController"},
}

// Parents reads the object a scale request changes from the API server,
// live: a scale is judged against the workload as stored now, not as a
// cache last saw it.
type Parents struct {
	Reader client.Reader
}

var _ core.Parents = (*Parents)(nil)

// Parent implements review.Parents.
func (p *Parents) Parent(ctx context.Context, in *policies.Input) (map[string]any, error) {
	gvk, ok := scaledKinds[schema.GroupResource{Group: in.Resource.Group, Resource: in.Resource.Resource}]
	if !ok {
		return nil, fmt.Errorf("the scale of %q is not judged", in.Resource.Resource)
	}
	meta, _ := in.Object["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns := in.ObjectNamespace()
	if name == "" || ns == "" {
		return nil, errors.New("the Scale names no object (metadata.name and metadata.namespace)")
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := p.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		return nil, fmt.Errorf("reading %s %s/%s: %w", gvk.Kind, ns, name, err)
	}
	// The JSON shape the policies see: numbers as json.Number, as in a
	// request.
	b, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s/%s: %w", gvk.Kind, ns, name, err)
	}
	obj, err := policies.DecodeJSON(b)
	if err != nil {
		return nil, fmt.Errorf("decoding %s %s/%s: %w", gvk.Kind, ns, name, err)
	}
	return obj, nil
}

package loader

import (
	"context"
	"errors"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/review"
)

// CheckOptions configure CheckBase.
type CheckOptions struct {
	// Scheme knows Tollgate's kinds and the cluster's (the server's
	// client's scheme).
	Scheme *runtime.Scheme
	// Mapper maps kinds to resources (the server's); nil knows none
	// but the scheme's.
	Mapper apimeta.RESTMapper
	// Secrets reads the Secrets image policies keep keys in; nil refuses
	// secretRef keys.
	Secrets client.Reader
	// PolicyTimeout bounds one policy on one request.
	PolicyTimeout time.Duration
}

// CheckBase loads b as a server would in a cluster holding nothing else:
// its modules with its config, and every one of its objects through the
// same formats (Gatekeeper, ValidatingAdmissionPolicy, Kyverno) and the
// same compile of TollgatePolicies and TollgateImagePolicies. It returns
// what did not load, naming each object. What an object needs from the
// cluster (a param, a ConfigMap, a Secret other than through Secrets) is
// not there: a set checked so should stand on its own. A constraint whose
// template is not in the set is not loaded, so not judged, here.
func CheckBase(ctx context.Context, b Base, opts CheckOptions) error {
	if opts.Scheme == nil {
		return errors.New("check: a scheme is required")
	}
	mapper := opts.Mapper
	if mapper == nil {
		mapper = apimeta.NewDefaultRESTMapper(nil)
	}
	gk, err := NewGatekeeperFormat(GatekeeperOptions{PolicyTimeout: opts.PolicyTimeout})
	if err != nil {
		return err
	}
	l, err := New(Options{
		Client: emptyCluster{scheme: opts.Scheme, mapper: mapper}, State: &review.Holder{},
		Base: b.Modules, BaseData: b.Data, FileConfig: b.Config,
		BaseObjects: b.Objects, BaseDigest: b.Digest,
		PolicyTimeout: opts.PolicyTimeout, Secrets: opts.Secrets,
		Formats:     []Format{gk, NewVAPFormat(VAPOptions{Mapper: opts.Mapper}), NewKyvernoFormat(KyvernoOptions{Mapper: opts.Mapper})},
		WriteStatus: func() bool { return false },
	})
	if err != nil {
		return err
	}
	l.trial = true
	_, err = l.Reload(ctx)
	return err
}

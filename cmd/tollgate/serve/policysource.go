package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/ocisource"
)

// policySource builds the policy source of opts (nil when none) and pulls
// its first good set, retrying with backoff until one verifies and loads
// or ctx ends. A set is checked by loading it with load (once its modules
// compile with its config), so a set whose modules do not compile or
// whose objects do not load is refused whole and the last good set stays
// in force. Each refused set is logged, counted and recorded as an Event
// on the server's namespace.
func policySource(ctx context.Context, c client.Client, mgr manager.Manager, opts Options, reg prometheus.Registerer, logger *slog.Logger,
	load func(context.Context, loader.Base) error) (*ocisource.Source, error) {
	if opts.PolicySource == nil {
		return nil, nil
	}
	so := *opts.PolicySource
	so.Registerer = reg
	so.Logger = logger.With("component", "policy-source")
	so.Check = func(ctx context.Context, set *ocisource.Set) error {
		base := withSet(opts, set)
		// The set compiles as it will run: beside the base modules, with
		// its config.
		if _, err := policies.New(ctx, policies.Options{Modules: base.Modules, Data: base.Data, Config: base.Config}); err != nil {
			return err
		}
		err := load(ctx, base)
		if ce := (*loader.ClusterError)(nil); errors.As(err, &ce) {
			return ocisource.Unchecked(err) // checked again on the next polls
		}
		return err
	}
	events := eventRecorder{mgr.GetEventRecorder("tollgate")}
	so.OnRefuse = func(ctx context.Context, digest, reason string, err error) {
		var ns corev1.Namespace
		if c.Get(ctx, client.ObjectKey{Name: opts.Namespace}, &ns) == nil {
			events.Eventf(&ns, corev1.EventTypeWarning, "PolicySetRefused", "policy set %s@%s refused (%s); the last good set stays in force: %v", opts.PolicySource.Ref, digest, reason, err)
		}
	}
	src, err := ocisource.New(so)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	wait := time.Second
	for src.Current() == nil {
		if _, err := src.Poll(ctx); err == nil && src.Current() == nil {
			logger.ErrorContext(ctx, "waiting for a policy set that verifies and compiles", "ref", so.Ref)
		}
		if src.Current() != nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("serve: no policy set from %s: %w", so.Ref, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
	return src, nil
}

// withSet is what the loader starts from: the base modules and data with
// set's joined (set may be nil), the set's config in place of the file's
// when it holds one, and the set's objects, named by their place in the
// set, with the set's digest.
func withSet(opts Options, set *ocisource.Set) loader.Base {
	b := loader.Base{Modules: slices.Clone(opts.Modules), Data: maps.Clone(opts.Data), Config: opts.Config}
	if set != nil {
		b.Modules = append(b.Modules, set.Modules...)
		if b.Data == nil {
			b.Data = map[string]any{}
		}
		maps.Copy(b.Data, set.Data)
		if set.Config != nil {
			b.Config = set.Config
		}
		for _, d := range set.Objects {
			b.Objects = append(b.Objects, loader.Object{Source: fmt.Sprintf("%s:%d", d.File, d.Line), Object: d.Object})
		}
		b.Digest = set.Digest
	}
	if b.Config == nil {
		b.Config = policies.DefaultConfig()
	}
	b.Data = withPrices(b.Data, opts.FinOps)
	return b
}

// versionInfo is what /version answers: the binary's version, the
// built-in library's and the policy set in force.
type versionInfo struct {
	Version   string         `json:"version"`
	Library   string         `json:"library"`
	PolicySet *policySetInfo `json:"policySet,omitempty"`
}

type policySetInfo struct {
	Ref      string `json:"ref"`
	Digest   string `json:"digest"`
	Revision string `json:"revision"`
}

func versionHandler(version string, src *ocisource.Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		v := versionInfo{Version: version, Library: library.Version}
		if src != nil {
			if set := src.Current(); set != nil {
				v.PolicySet = &policySetInfo{Ref: set.Ref, Digest: set.Digest, Revision: set.Revision}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
}

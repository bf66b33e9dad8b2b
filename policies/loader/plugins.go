package loader

import (
	"context"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// Format loads one policy format from the cluster beside Tollgate's own
// (Gatekeeper templates and constraints, ValidatingAdmissionPolicies). Each
// reload asks it for its plugin as the cluster holds it now; a format keeps
// its own last good version of anything that stops loading.
type Format interface {
	// Load compiles the format's policies. It returns the plugin to judge
	// with (never a zero Evaluator) and what did not load, per object.
	Load(ctx context.Context, c client.Client) (review.Plugin, []Problem)
	// Watch starts the informers whose events reload; it is called after
	// every load, so kinds that load found (a new template's constraint
	// kind, a policy's param kind) are watched from then on.
	Watch(ctx context.Context, c cache.Cache, reload func()) error
}

// Configurer is the optional capability of a format that reads the config
// in force (Gatekeeper's gatekeeper.sync); it is called before Watch and
// Load on every reload.
type Configurer interface {
	Configure(cfg *policies.Config)
}

// Problem is an object of a format that did not load, and why.
type Problem struct {
	Object  client.Object
	Message string
	// Write says the object loaded and what failed is a write to the
	// cluster for it (its constraint kind's CRD): it is reported, but a
	// policy set holding the object is not refused for it.
	Write bool
}

// admissionPluginer is the optional capability of a format whose
// policies from a policy set must be judged at admission by Tollgate
// though the format's own are not (the API server enforces the cluster's
// ValidatingAdmissionPolicies, never a set's).
type admissionPluginer interface {
	AdmissionPlugin() (review.Plugin, bool)
}

// EventRecorder records what did not load as Events on the objects (the
// manager's recorder); it is the status channel of formats whose objects
// Tollgate does not own, so another controller's status is never touched.
type EventRecorder interface {
	Eventf(object client.Object, eventtype, reason, messageFmt string, args ...any)
}

// plugins loads every format with the config in force, and reports
// problems it had not reported for the same object and message yet.
func (l *Loader) plugins(ctx context.Context, cfg *policies.Config) []review.Plugin {
	var out []review.Plugin
	for _, f := range l.opts.Formats {
		if c, ok := f.(Configurer); ok {
			c.Configure(cfg)
		}
		p, problems := f.Load(ctx, l.reader)
		out = append(out, p)
		if a, ok := f.(admissionPluginer); ok {
			if ap, ok := a.AdmissionPlugin(); ok {
				out = append(out, ap)
			}
		}
		if l.opts.Cache != nil {
			// After the load, so the kinds it found (a template's
			// constraint kind, a policy's param kind) are watched at once:
			// their informers' first events reload with them.
			if err := f.Watch(ctx, l.opts.Cache, l.Trigger); err != nil {
				l.opts.Logger.ErrorContext(ctx, "watching a policy format failed", "error", err)
			}
		}
		for _, pr := range problems {
			if fromSet(pr.Object) && !pr.Write {
				l.setProblem(ctx, pr.Object.GetObjectKind().GroupVersionKind().Kind, pr.Object, pr.Message)
				continue
			}
			l.opts.Logger.WarnContext(ctx, "policy not loaded", "format", p.Name, "kind", pr.Object.GetObjectKind().GroupVersionKind().Kind,
				"namespace", pr.Object.GetNamespace(), "name", pr.Object.GetName(), "error", pr.Message)
			if l.opts.Events != nil && l.opts.WriteStatus() && !fromSet(pr.Object) && l.reported.first(pr) {
				l.opts.Events.Eventf(pr.Object, "Warning", "NotLoaded", "%s", limit(pr.Message))
			}
		}
	}
	return out
}

// reportedProblems remembers the problems already recorded as Events, so a
// reload does not repeat them.
type reportedProblems struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *reportedProblems) first(p Problem) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil || len(r.seen) > 10000 {
		r.seen = map[string]bool{}
	}
	key := string(p.Object.GetUID()) + "/" + p.Object.GetResourceVersion() + "/" + p.Message
	if r.seen[key] {
		return false
	}
	r.seen[key] = true
	return true
}

// Package review is Tollgate's one review core. Every path that judges an
// object — admission, the background audit, `tollgate check` in pull
// requests and `tollgate report` — turns it into a policies.Input and calls
// Reviewer.Review (and Reviewer.Mutate first where the cluster would mutate
// the object before storing it). The evaluators plug in here once: the Rego
// engine (library and user policies), image policies, gates such as the
// budget gate, and the evaluators of other policy formats loaded with a Set.
// Then exceptions are applied and the per-action decision (enforce, warn,
// audit) is made, in one place, so a new evaluator shows up on every path.
//
// The package imports nothing of the webhook, the CLI or Kubernetes clients:
// what it needs from a cluster (registry credentials, Budgets) comes through
// small interfaces the callers implement.
package review

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// Evaluator is one source of findings: it judges an input and reports what
// it found. The Rego engine is one; so are image policies, the budget gate
// and the evaluators of other policy formats.
type Evaluator interface {
	Evaluate(ctx context.Context, in *policies.Input) *policies.Decision
}

// EvaluatorFunc adapts a function to an Evaluator.
type EvaluatorFunc func(ctx context.Context, in *policies.Input) *policies.Decision

// Evaluate implements Evaluator.
func (f EvaluatorFunc) Evaluate(ctx context.Context, in *policies.Input) *policies.Decision {
	return f(ctx, in)
}

var (
	_ Evaluator = EvaluatorFunc(nil)
	_ Evaluator = (*policies.Engine)(nil)
)

// Catalogue is the optional capability of an evaluator that lists the
// policies it holds, with their effective actions: reports, `tollgate
// policies` and the decision on a policy that errored read it.
type Catalogue interface {
	Policies() []policies.Metadata
}

// Plugin is an evaluator loaded with a Set (a policy format other than
// Tollgate's Rego), and the sources it does not run on.
type Plugin struct {
	// Name says what it is ("gatekeeper", "vap") in logs and errors.
	Name      string
	Evaluator Evaluator
	// SkipSources are the input sources it does not judge, e.g.
	// ValidatingAdmissionPolicies at admission, which the API server
	// already enforces.
	SkipSources []string
}

// Set is everything inputs are judged with at one moment: the Rego engine
// (with its config), the image policies, the exceptions in force and the
// plugins. It is built whole and replaced whole, so a request never sees
// half of a reload.
type Set struct {
	// Engine runs the Rego policies; its config governs mutation, pod
	// templates and exempt namespaces.
	Engine *policies.Engine
	// Images are the image policies in force.
	Images []ImagePolicy
	// Exceptions in force.
	Exceptions []policies.Exception
	// Plugins judge beside the engine.
	Plugins []Plugin
	// Generation counts loads; decision logs and reports record it.
	Generation int64
	// PolicySet names the policies the set judges with (a digest, see
	// policies.ModulesDigest), computed once when the set is loaded;
	// decision logs and the audit's Reports record it, so an auditor can
	// tell which policy set judged a decision. Empty when not known.
	PolicySet string

	actions map[string]policies.Action
}

// ReadsManagedFields reports whether anything in the set may judge the
// metadata.managedFields of inputs from source: the Rego engine never sees
// them (policies.Engine leaves them out), image policies and gates do not
// read them, and a plugin of another format (a Gatekeeper template, a
// Kyverno policy) may. The webhook leaves them out of what it decodes when
// nothing reads them: on a typical object they are as large as the spec.
func (s *Set) ReadsManagedFields(source string) bool {
	for _, p := range s.Plugins {
		if !slices.Contains(p.SkipSources, source) {
			return true
		}
	}
	return false
}

// NewSet prepares a set for reviewing: it indexes the effective action of
// every policy, which decides what a policy that errors does.
func NewSet(e *policies.Engine, exceptions []policies.Exception, generation int64, plugins ...Plugin) *Set {
	s := &Set{Engine: e, Exceptions: exceptions, Generation: generation, Plugins: plugins, actions: map[string]policies.Action{}}
	for _, m := range e.Policies() {
		s.actions[m.ID] = e.Action(&m)
	}
	for _, p := range plugins {
		if c, ok := p.Evaluator.(Catalogue); ok {
			for _, m := range c.Policies() {
				s.actions[m.ID] = m.Action
			}
		}
	}
	return s
}

// Action is the effective action of a policy id ("" if the set does not
// hold it).
func (s *Set) Action(id string) policies.Action { return s.actions[id] }

// Policies lists every policy of the set: the engine's, with the config's
// action applied, then the plugins'.
func (s *Set) Policies() []policies.Metadata {
	metas := s.Engine.Policies()
	for i := range metas {
		metas[i].Action = s.Engine.Action(&metas[i])
	}
	for _, p := range s.Plugins {
		if c, ok := p.Evaluator.(Catalogue); ok {
			metas = append(metas, c.Policies()...)
		}
	}
	return metas
}

// Holder publishes the current Set to concurrent readers.
type Holder struct{ p atomic.Pointer[Set] }

// Load returns the current set, or nil before the first load.
func (h *Holder) Load() *Set { return h.p.Load() }

// Store replaces the current set.
func (h *Holder) Store(s *Set) { h.p.Store(s) }

// Options are a Reviewer's dependencies.
type Options struct {
	// Images verifies container images against the set's image
	// policies; nil leaves images unjudged.
	Images *ImageGate
	// Gates judge every input of this reviewer beside the set's
	// evaluators; they hold no policies of their own that reload (the
	// budget gate reads Budgets as they stand).
	Gates []Evaluator
	// Parents reads the object a subresource request changes (a scale's
	// Deployment); nil judges no scale.
	Parents Parents
	// Scans gives the vulnerability scans of the images of the pods
	// reviewed, which policies see in input.imageScans; nil leaves
	// input.imageScans unset (no scanner on this path).
	Scans vuln.Source
	// ScansWait bounds the wait for Scans when the request's context
	// ends later (default DefaultScansWait); past it every image of the
	// input is judged as a failed scan.
	ScansWait time.Duration
	// Now is the clock exceptions expire by.
	Now func() time.Time
}

// Reviewer is the review core: one per path configuration (admission with
// the registry and Budgets; check offline), shared by every request.
type Reviewer struct{ opts Options }

// New builds a Reviewer.
func New(opts Options) *Reviewer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reviewer{opts: opts}
}

// Verdict is the outcome of one review: the findings (exceptions marked),
// the policies that could not be evaluated, and what they add up to.
type Verdict struct {
	policies.Decision
	// Denials are the lines of every enforced violation, and of every
	// enforced policy that could not be evaluated (it fails closed):
	// "[policy] path: message".
	Denials []string
	// Warnings are the lines of Warn findings and of policies that are
	// not enforced and could not be evaluated.
	Warnings []string
	// ImageScans are the scan summaries policies saw in
	// input.imageScans, by image reference as written; nil without a
	// scan Source or without images. The audit's Reports read them.
	ImageScans map[string]*vuln.Summary
	// Profile is the namespace profile the input was judged under ("" when
	// the config defines none or the object has no namespace).
	Profile string
}

// Allowed reports whether nothing denies.
func (v *Verdict) Allowed() bool { return len(v.Denials) == 0 }

// Review judges one input with a set: the Rego engine, the set's plugins
// that run on the input's source, image policies, the gates; then the
// exceptions in force; then the decision per action. With Options.Scans,
// every evaluator sees the scans of the input's images in
// input.imageScans, on every pass (a map lookup in the scan store; the
// input given is not changed).
//
// A subresource request is judged as the object it changes (see
// Subresources): a scale as its parent at the new size, read through
// Options.Parents. Only the findings on the fields the subresource can
// change count (kubectl debug is judged on what it adds, not on the pod it
// attaches to), beside what the gates find about the change.
func (r *Reviewer) Review(ctx context.Context, s *Set, in *policies.Input) *Verdict {
	judged, err := r.subject(ctx, in)
	if err != nil {
		d := &policies.Decision{Findings: []policies.Finding{{
			Policy: "subresource", Action: policies.ActionWarn, Severity: policies.SeverityLow,
			Message: "this " + in.SubResource + " request could not be judged: " + err.Error(),
		}}}
		return decide(s, d)
	}
	in, scans := r.withScans(ctx, s, judged)
	d := s.Engine.Evaluate(ctx, in)
	for _, p := range s.Plugins {
		if slices.Contains(p.SkipSources, in.Source) {
			continue
		}
		merge(d, p.Evaluator.Evaluate(ctx, in))
	}
	if r.opts.Images != nil && len(s.Images) > 0 && imagesChange(in) {
		d.Findings = append(d.Findings, r.opts.Images.Check(ctx, s, in)...)
	}
	d.Findings = onlyChanged(in, d.Findings, false)
	for _, g := range r.opts.Gates {
		gd := g.Evaluate(ctx, in)
		if gd != nil {
			gd.Findings = onlyChanged(in, gd.Findings, true)
		}
		merge(d, gd)
	}
	d.ApplyExceptions(in, s.Exceptions, r.opts.Now())
	profile, p := applyProfile(s, in, d)
	// The profile change is judged after exceptions and profiles: only
	// profiles.changers can move a namespace, no exception can.
	d.Findings = append(d.Findings, profileChange(s.Engine.Config(), in)...)
	v := decideUnder(s, p, d)
	v.Profile = profile
	v.ImageScans = scans
	for _, g := range r.opts.Gates {
		if c, ok := g.(Committer); ok {
			c.Settle(ctx, in, v.Allowed())
		}
	}
	return v
}

// Committer is the optional capability of a gate that keeps account of
// what it admits (the budget gate counts admitted changes until its
// scanner sees them): Settle tells it, after every review, whether the
// input it judged was allowed in the end.
type Committer interface {
	Settle(ctx context.Context, in *policies.Input, allowed bool)
}

func merge(d, more *policies.Decision) {
	if more == nil {
		return
	}
	d.Findings = append(d.Findings, more.Findings...)
	d.Errors = append(d.Errors, more.Errors...)
	d.Applied += more.Applied
	d.Checked = append(d.Checked, more.Checked...)
}

// decide turns findings into denials and warnings: Enforce denies, Warn
// warns, Audit only records; a waived finding does neither. A policy that
// could not be evaluated denies when it is enforced (it fails closed) and
// warns otherwise.
func decide(s *Set, d *policies.Decision) *Verdict { return decideUnder(s, nil, d) }

// decideUnder is decide in a profile's namespace: a policy that errors
// fails closed where the profile enforces it, and the profile's notice
// is said first when anything warns.
func decideUnder(s *Set, p *policies.Profile, d *policies.Decision) *Verdict {
	v := &Verdict{Decision: *d}
	for _, f := range d.Findings {
		if f.Waived() {
			continue
		}
		switch f.Action {
		case policies.ActionEnforce:
			v.Denials = append(v.Denials, Line(&f))
		case policies.ActionWarn:
			v.Warnings = append(v.Warnings, Line(&f))
		}
	}
	for _, e := range d.Errors {
		line := fmt.Sprintf("[%s] could not be evaluated: %v", e.Policy, e.Err)
		if errorAction(s, p, e.Policy) == policies.ActionEnforce {
			v.Denials = append(v.Denials, line)
		} else {
			v.Warnings = append(v.Warnings, line)
		}
	}
	if p != nil && p.Notice != "" && len(v.Warnings) > 0 {
		v.Warnings = append([]string{p.Notice}, v.Warnings...)
	}
	return v
}

// Line is a finding as one line for a person: "[policy] path: message".
func Line(f *policies.Finding) string {
	if f.Path != "" {
		return fmt.Sprintf("[%s] %s: %s", f.Policy, f.Path, f.Message)
	}
	return fmt.Sprintf("[%s] %s", f.Policy, f.Message)
}

// Mutator is the optional capability of a plugin that mutates as well as
// judges (MutatingAdmissionPolicies): the JSON patch it makes to the
// input's object.
type Mutator interface {
	Mutate(ctx context.Context, in *policies.Input) ([]policies.PatchOperation, error)
}

// Mutate is what the cluster would change in the input's object before it
// is judged, in the API server's order: the plugins that mutate (where they
// run on the input's source), then Tollgate's own defaults (ownership
// labels, security context, resources) and, with an image gate, each
// verified image pinned to its digest. Notes say why an image was not
// pinned. An error means the object is malformed in a way defaulting cannot
// handle, or a plugin failed.
func (r *Reviewer) Mutate(ctx context.Context, s *Set, in *policies.Input) (*policies.Mutation, []string, error) {
	original := in
	var pluginOps []policies.PatchOperation
	for _, p := range s.Plugins {
		m, ok := p.Evaluator.(Mutator)
		if !ok || slices.Contains(p.SkipSources, in.Source) {
			continue
		}
		ops, err := m.Mutate(ctx, in)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		if len(ops) == 0 {
			continue
		}
		obj, err := Apply(in.Object, &policies.Mutation{Patch: ops})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		next := *in
		next.Object = obj
		in = &next
		pluginOps = append(pluginOps, ops...)
	}
	var pins []policies.ImagePin
	var notes []string
	if r.opts.Images != nil && len(s.Images) > 0 {
		pins, notes = r.opts.Images.Pins(ctx, s, in)
	}
	m, err := s.Engine.Mutate(in, pins...)
	if err != nil || len(pluginOps) == 0 {
		return m, notes, err
	}
	// Plugins changed the object first: the patch is from the object as
	// given to what all of them together make of it.
	final, err := Apply(in.Object, m)
	if err != nil {
		return nil, notes, err
	}
	patch, err := policies.Diff(original.Object, final)
	if err != nil {
		return nil, notes, err
	}
	return &policies.Mutation{Patch: patch, Injected: m.Injected}, notes, nil
}

// Apply returns the object with a mutation's patch applied, as the API
// server would store it; the input object is not changed.
func Apply(obj map[string]any, m *policies.Mutation) (map[string]any, error) {
	if m == nil || m.Empty() {
		return obj, nil
	}
	doc, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding the object: %w", err)
	}
	ops, err := json.Marshal(m.Patch)
	if err != nil {
		return nil, fmt.Errorf("encoding the patch: %w", err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, fmt.Errorf("decoding the patch: %w", err)
	}
	out, err := patch.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("applying the patch: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var mutated map[string]any
	if err := dec.Decode(&mutated); err != nil {
		return nil, fmt.Errorf("decoding the patched object: %w", err)
	}
	return mutated, nil
}

package policies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/types"
)

// DefaultPolicyTimeout bounds one policy's evaluation of one input. The
// webhook sets its own, inside the admission timeout.
const DefaultPolicyTimeout = 2 * time.Second

// Builtin is an extra Rego function the engine's policies may call.
type Builtin struct {
	Name string
	Decl *types.Function
	Impl rego.BuiltinDyn
}

// Options configure an Engine.
type Options struct {
	// Modules are the Rego files to load; test files are skipped.
	Modules []Module
	// Data is served to policies under data (bundle data documents).
	Data map[string]any
	// Config is the platform config; nil means DefaultConfig().
	Config *Config
	// PolicyTimeout bounds each policy's evaluation; 0 means
	// DefaultPolicyTimeout.
	PolicyTimeout time.Duration
	// Builtins are extra functions available to policies, besides
	// StandardBuiltins. A policy that calls one of them is never cached:
	// the engine cannot know what it reads.
	Builtins []Builtin
	// VerdictCache is the byte budget of the cache of each policy's
	// verdict, keyed by the values the policy reads; 0 turns it off.
	// The cache lives and dies with the Engine: a change of policies or
	// config builds a new Engine, hence a new cache. See CacheStats.
	VerdictCache int64
	// FullInput builds the whole input for every evaluation instead of
	// only the parts the applicable policies read. The verdicts are the
	// same; it exists to prove that, and to measure what pruning saves.
	FullInput bool
}

// DefaultVerdictCache is a verdict cache budget for a server: a few
// thousand distinct objects' verdicts for the whole library.
const DefaultVerdictCache = 32 << 20

// Validate checks the options before anything is compiled.
func (o *Options) Validate() error {
	if o.PolicyTimeout < 0 {
		return fmt.Errorf("policy timeout %s is negative", o.PolicyTimeout)
	}
	if o.VerdictCache < 0 {
		return fmt.Errorf("verdict cache budget %d is negative (0 turns the cache off)", o.VerdictCache)
	}
	if o.Config != nil {
		if err := o.Config.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// Engine judges inputs against a compiled set of policies. Policies are
// parsed, compiled and prepared once in New; Evaluate only evaluates, and is
// safe for concurrent use.
type Engine struct {
	cfg    *Config
	config *ast.Term
	// profiles are input.profile per profile name, built once: the
	// config, hence every profile's parameters, is fixed for the engine's
	// life.
	profiles map[string]profileView
	timeout  time.Duration
	pods     podControllers
	policies []*policy
	// prepareQuery prepares a query with the engine's compiler, store and
	// built-ins.
	prepareQuery func(query string) (rego.PreparedEvalQuery, error)
	// combined holds, per set of applicable policies (their ids joined),
	// one prepared query that evaluates exactly those in one pass: a
	// policy that does not apply to an input is never evaluated, so a slow
	// policy for one kind costs nothing on the others. The sets are few
	// (by kind and namespace scope); past maxCombined of them the engine
	// evaluates one policy at a time. When a combined query fails (one
	// policy errors, panics or times out) the engine falls back to
	// evaluating the applicable policies one by one so the others still
	// report.
	combinedMu sync.Mutex
	combined   map[string]*rego.PreparedEvalQuery
	// plans holds, per set of applicable policies, what they read
	// together; bounded like combined.
	plansMu sync.Mutex
	plans   map[string]*plan
	// cache holds verdicts by what each policy read; nil when off.
	cache     *verdictCache
	fullInput bool
}

// maxCombined bounds the prepared combined queries an engine keeps.
const maxCombined = 256

// errNoCombined: no combined query for a set of policies (maxCombined
// reached, or it could not be prepared).
var errNoCombined = errors.New("no combined query")

type policy struct {
	meta  Metadata
	query rego.PreparedEvalQuery
	// reads is what the policy reads of its input, and whether its
	// verdict may be cached.
	reads readSet
	// readsInventory says the policy reads input.inventory: its verdict
	// is cached only where there is none (admission). Keying a verdict on
	// the inventory would hash the cluster's RBAC and network policies
	// for every object the audit judges.
	readsInventory bool
}

// New compiles the modules and prepares every policy. A module that does not
// parse or compile is an error naming its file and line.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg := opts.Config
	if cfg == nil {
		cfg = DefaultConfig()
	}
	view, err := cfg.regoView()
	if err != nil {
		return nil, err
	}
	cfgValue, err := ast.InterfaceToValue(view)
	if err != nil {
		return nil, fmt.Errorf("encoding config for policies: %w", err)
	}
	e := &Engine{
		cfg:     cfg,
		config:  ast.NewTerm(cfgValue),
		timeout: opts.PolicyTimeout,
		pods:    newPodControllers(cfg.PodControllers),
	}
	if e.profiles, err = profileViews(cfg); err != nil {
		return nil, err
	}
	if e.timeout == 0 {
		e.timeout = DefaultPolicyTimeout
	}

	builtins := append(StandardBuiltins(), opts.Builtins...)
	compiler, metas, err := compile(opts.Modules, builtins)
	if err != nil {
		return nil, err
	}
	if err := checkOverrides(cfg, metas); err != nil {
		return nil, err
	}
	regoOpts := []func(*rego.Rego){
		rego.Compiler(compiler),
		rego.StrictBuiltinErrors(true),
	}
	if len(opts.Data) > 0 {
		regoOpts = append(regoOpts, rego.Store(inmem.NewFromObject(opts.Data)))
	}
	for _, b := range builtins {
		regoOpts = append(regoOpts, rego.FunctionDyn(&rego.Function{Name: b.Name, Decl: b.Decl}, b.Impl))
	}
	prepare := func(query string) (rego.PreparedEvalQuery, error) {
		return rego.New(append(slices.Clone(regoOpts), rego.Query(query))...).PrepareForEval(ctx)
	}

	for _, m := range metas {
		q, err := prepare(m.Package + ".violation")
		if err != nil {
			return nil, fmt.Errorf("preparing policy %s (%s:%d): %w", m.ID, m.Source, m.Line, err)
		}
		ref, err := ast.ParseRef(m.Package + ".violation")
		if err != nil {
			return nil, fmt.Errorf("policy %s: package %s: %w", m.ID, m.Package, err)
		}
		reads := analyzeReads(compiler, ref)
		if reads.uncacheable == "" && reads.root.whole {
			reads.uncacheable = "reads the input in a way that cannot be bounded"
		}
		e.policies = append(e.policies, &policy{meta: m, query: q, reads: reads, readsInventory: reads.root.kids["inventory"] != nil})
	}
	e.prepareQuery = prepare
	e.combined = map[string]*rego.PreparedEvalQuery{}
	e.plans = map[string]*plan{}
	e.cache = newVerdictCache(opts.VerdictCache)
	e.fullInput = opts.FullInput
	return e, nil
}

// combinedQuery returns the prepared query that evaluates exactly ps in
// one pass, preparing it on first use; nil when the engine keeps
// maxCombined already or it cannot be prepared (each policy is then
// evaluated on its own).
func (e *Engine) combinedQuery(ps []*policy) *rego.PreparedEvalQuery {
	key := planKey(ps)
	e.combinedMu.Lock()
	defer e.combinedMu.Unlock()
	if q, ok := e.combined[key]; ok {
		return q
	}
	if len(e.combined) >= maxCombined {
		return nil
	}
	var query strings.Builder
	query.WriteString("{")
	for i, p := range ps {
		if i > 0 {
			query.WriteString(", ")
		}
		query.WriteString(strconv.Quote(p.meta.ID) + ": " + p.meta.Package + ".violation")
	}
	query.WriteString("}")
	q, err := e.prepareQuery(query.String())
	if err != nil {
		return nil
	}
	e.combined[key] = &q
	return &q
}

// plan returns what the policies ps read together.
func (e *Engine) plan(ps []*policy) *plan {
	if e.fullInput {
		return &plan{}
	}
	key := planKey(ps)
	e.plansMu.Lock()
	defer e.plansMu.Unlock()
	if pl, ok := e.plans[key]; ok {
		return pl
	}
	pl := newPlan(ps)
	if len(e.plans) < maxCombined {
		e.plans[key] = pl
	}
	return pl
}

// CacheStats reports the verdict cache's counters; zero when the cache is
// off.
func (e *Engine) CacheStats() CacheStats {
	if e.cache == nil {
		return CacheStats{}
	}
	return e.cache.stats()
}

// Reads lists, per policy id, the input paths the policy reads as the
// engine found them ("input.pod.spec.containers[_].image"; "(type)" where
// only the value's presence and kind matter), and why its verdict is never
// cached when it is not. `tollgate policies` and tests show it.
func (e *Engine) Reads() map[string]PolicyReads {
	out := make(map[string]PolicyReads, len(e.policies))
	for _, p := range e.policies {
		out[p.meta.ID] = PolicyReads{Paths: p.reads.root.paths(), Uncacheable: p.reads.uncacheable}
	}
	return out
}

// PolicyReads is what one policy reads of its input.
type PolicyReads struct {
	Paths []string
	// Uncacheable says why the policy's verdict is never cached; empty
	// when it is.
	Uncacheable string
}

// checkOverrides rejects config overrides of policies that are not loaded:
// a misspelled id would otherwise leave the policy at its default action.
func checkOverrides(cfg *Config, metas []Metadata) error {
	known := make(map[string]bool, len(metas))
	for _, m := range metas {
		known[m.ID] = true
	}
	var errs []error
	for _, id := range sortedKeys(cfg.Policies) {
		if !known[id] {
			errs = append(errs, fmt.Errorf("config policies.%s: no loaded policy has this id (see `tollgate policies`)", id))
		}
	}
	return errors.Join(errs...)
}

// Policies lists the loaded policies' metadata, sorted by id.
func (e *Engine) Policies() []Metadata {
	out := make([]Metadata, len(e.policies))
	for i, p := range e.policies {
		out[i] = p.meta
	}
	return out
}

// Config is the configuration the engine was built with.
func (e *Engine) Config() *Config { return e.cfg }

// Action is the effective action of a policy after config overrides.
func (e *Engine) Action(m *Metadata) Action { return e.cfg.action(m) }

// PodTemplatePath returns where a kind keeps its pod template ("" for a Pod
// itself) and whether it has one; pod policies' paths are relative to it.
func (e *Engine) PodTemplatePath(gvk GroupVersionKind) (string, bool) {
	p, ok := e.pods.template(gvk)
	return strings.Join(p, "."), ok
}

// Evaluate judges one input against every policy that applies to it. It
// never fails as a whole: a policy that errors, panics or times out is
// reported in Decision.Errors and the others still report findings.
func (e *Engine) Evaluate(ctx context.Context, in *Input) *Decision {
	d := &Decision{Findings: []Finding{}}
	applicable, tmplPath, hasPod, podPrefix := e.match(in)
	d.Applied = len(applicable)
	if len(applicable) == 0 {
		return d
	}
	if in.Source != SourceAdmission {
		d.Checked = make([]string, len(applicable))
		for i, p := range applicable {
			d.Checked[i] = p.meta.ID
		}
	}

	// Verdicts already known for exactly what each policy reads, keyed
	// on the JSON values themselves: a policy whose verdict is known
	// costs no conversion for Rego.
	var (
		cached  map[string]any
		keys    map[string][32]byte
		pending = applicable
	)
	if e.cache != nil {
		cached = map[string]any{}
		keys = map[string][32]byte{}
		pending = make([]*policy, 0, len(applicable))
		memo := digests{}
		input := goInput(in, tmplPath, hasPod, e.profileOf(in).value)
		for _, p := range applicable {
			if p.reads.uncacheable != "" || p.readsInventory && in.Inventory != nil {
				e.cache.uncacheable.Add(1)
				pending = append(pending, p)
				continue
			}
			k := verdictKey(p.meta.ID, p.reads.root, input, memo)
			if v, ok := e.cache.get(k); ok {
				cached[p.meta.ID] = v
				continue
			}
			keys[p.meta.ID] = k
			pending = append(pending, p)
		}
	}

	results := map[string]any{}
	if len(pending) > 0 {
		input, err := e.inputValue(in, e.plan(pending), tmplPath, hasPod)
		if err != nil {
			for _, p := range applicable {
				d.Errors = append(d.Errors, &PolicyError{Policy: p.meta.ID, Err: err})
			}
			return d
		}
		all, err := e.evalAll(ctx, pending, input)
		if errors.Is(err, errNoCombined) && len(pending) < len(applicable) {
			// Past maxCombined sets, the set of all applicable
			// policies (prepared long ago, in all likelihood) beats
			// one query per pending policy; only the pending ones'
			// results are used.
			all, err = e.evalAll(ctx, applicable, input)
		}
		if err == nil {
			results = all
		} else {
			// Find the culprit: evaluate each pending policy on its own.
			for _, p := range pending {
				v, err := e.evalOne(ctx, p, input)
				if err != nil {
					d.Errors = append(d.Errors, &PolicyError{Policy: p.meta.ID, Err: err})
					continue
				}
				results[p.meta.ID] = v
			}
		}
		for id, k := range keys {
			if v, ok := results[id]; ok {
				e.cache.put(k, v)
			}
		}
	}
	for id, v := range cached {
		results[id] = v
	}
	for _, p := range applicable {
		violations, _ := results[p.meta.ID].([]any)
		for _, v := range violations {
			f := e.finding(p, v, podPrefix)
			d.Findings = append(d.Findings, f)
		}
	}
	slices.SortFunc(d.Findings, func(a, b Finding) int {
		if c := strings.Compare(a.Policy, b.Policy); c != 0 {
			return c
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return d
}

func (e *Engine) applicable(in *Input, hasPod bool) []*policy {
	ns := in.ObjectNamespace()
	var out []*policy
	for _, p := range e.policies {
		if e.cfg.action(&p.meta) == ActionDisabled || e.cfg.exempt(p.meta.ID, ns) || !e.cfg.inScope(p.meta.ID, ns, in.Kind) {
			continue
		}
		if p.meta.AuditOnly && in.Source == SourceAdmission {
			continue
		}
		if p.meta.Inventory != "" && (in.Inventory == nil || p.meta.Inventory == "complete" && !in.Inventory.Complete()) {
			continue
		}
		switch p.meta.Scope {
		case ScopePod:
			if !hasPod {
				continue
			}
		default:
			if !e.kindApplies(&p.meta, in.Kind) {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// kindApplies reports whether an object policy judges a kind: one its
// metadata names, or one the config governs when the policy asks for them.
func (e *Engine) kindApplies(m *Metadata, gvk GroupVersionKind) bool {
	if m.GovernedKinds {
		if e.cfg.GovernedKind(gvk) != nil {
			return true
		}
		if len(m.Kinds) == 0 {
			return false
		}
	}
	return matchKinds(m.Kinds, gvk)
}

// matchKinds matches "Kind" (any group) or "group/Kind" ("core/Kind" or
// "/Kind" for the core group).
func matchKinds(kinds []string, gvk GroupVersionKind) bool {
	if len(kinds) == 0 {
		return true
	}
	for _, k := range kinds {
		group, kind, ok := strings.Cut(k, "/")
		if !ok {
			if k == gvk.Kind || k == "*" {
				return true
			}
			continue
		}
		if group == "core" {
			group = ""
		}
		if group == gvk.Group && (kind == gvk.Kind || kind == "*") {
			return true
		}
	}
	return false
}

var (
	metadataKey = ast.StringTerm("metadata")
	specKey     = ast.StringTerm("spec")
)

// podView is the pod-shaped {metadata, spec} view of the template found at
// tmplPath in the converted object; it shares the object's terms.
func podView(object ast.Value, tmplPath []string) ast.Value {
	if object == nil {
		return nil
	}
	tmpl := object
	if len(tmplPath) > 0 {
		ref := make(ast.Ref, len(tmplPath))
		for i, s := range tmplPath {
			ref[i] = ast.StringTerm(s)
		}
		var err error
		if tmpl, err = object.Find(ref); err != nil {
			return nil
		}
	}
	t, ok := tmpl.(ast.Object)
	if !ok {
		return nil
	}
	meta, spec := t.Get(metadataKey), t.Get(specKey)
	if meta == nil || !isObject(meta) {
		meta = ast.ObjectTerm()
	}
	if spec == nil || !isObject(spec) {
		spec = ast.ObjectTerm()
	}
	return ast.NewObject([2]*ast.Term{metadataKey, meta}, [2]*ast.Term{specKey, spec})
}

func isObject(t *ast.Term) bool {
	_, ok := t.Value.(ast.Object)
	return ok
}

func (e *Engine) inputValue(in *Input, pl *plan, tmplPath []string, hasPod bool) (ast.Value, error) {
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("kind"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("group"), ast.StringTerm(in.Kind.Group)),
			ast.Item(ast.StringTerm("version"), ast.StringTerm(in.Kind.Version)),
			ast.Item(ast.StringTerm("kind"), ast.StringTerm(in.Kind.Kind)),
		)),
		ast.Item(ast.StringTerm("operation"), ast.StringTerm(in.Operation)),
		ast.Item(ast.StringTerm("dryRun"), ast.BooleanTerm(in.DryRun)),
		ast.Item(ast.StringTerm("subResource"), ast.StringTerm(in.SubResource)),
		ast.Item(ast.StringTerm("source"), ast.StringTerm(in.Source)),
		ast.Item(ast.StringTerm("config"), e.config),
	)
	values := map[string]ast.Value{}
	for _, f := range []struct {
		key string
		val map[string]any
	}{{"object", in.Object}, {"oldObject", in.OldObject}, {"namespace", in.Namespace}} {
		if len(f.val) == 0 {
			continue
		}
		var n *readNode
		if pl.union != nil {
			if n = pl.objectNode(f.key, tmplPath, hasPod && f.key != "namespace"); n == nil {
				continue
			}
		}
		v, err := toValue(withoutManagedFields(f.val), n)
		if err != nil {
			return nil, fmt.Errorf("converting input.%s: %w", f.key, err)
		}
		values[f.key] = v
		obj.Insert(ast.StringTerm(f.key), ast.NewTerm(v))
	}
	if in.ImageScans != nil {
		var n *readNode
		if pl.union != nil {
			n = pl.union.child("imageScans")
		}
		if pl.union == nil || n != nil {
			v, err := toValue(in.ImageScans, n)
			if err != nil {
				return nil, fmt.Errorf("converting input.imageScans: %w", err)
			}
			obj.Insert(ast.StringTerm("imageScans"), ast.NewTerm(v))
		}
	}
	if in.Inventory != nil && (pl.union == nil || pl.union.child("inventory") != nil) {
		t, err := in.Inventory.astTerm()
		if err != nil {
			return nil, err
		}
		obj.Insert(ast.StringTerm("inventory"), t)
	}
	if pv := e.profileOf(in); pv.term != nil && (pl.union == nil || pl.union.child("profile") != nil) {
		obj.Insert(ast.StringTerm("profile"), pv.term)
	}
	if c := in.Controller; c != nil {
		obj.Insert(ast.StringTerm("controller"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("apiVersion"), ast.StringTerm(c.APIVersion)),
			ast.Item(ast.StringTerm("kind"), ast.StringTerm(c.Kind)),
			ast.Item(ast.StringTerm("name"), ast.StringTerm(c.Name)),
			ast.Item(ast.StringTerm("uid"), ast.StringTerm(c.UID)),
		))
	}
	if u := in.UserInfo; u != nil {
		groups := make([]*ast.Term, len(u.Groups))
		for i, g := range u.Groups {
			groups[i] = ast.StringTerm(g)
		}
		extra := ast.NewObject()
		for k, vs := range u.Extra {
			terms := make([]*ast.Term, len(vs))
			for i, v := range vs {
				terms[i] = ast.StringTerm(v)
			}
			extra.Insert(ast.StringTerm(k), ast.ArrayTerm(terms...))
		}
		obj.Insert(ast.StringTerm("userInfo"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("username"), ast.StringTerm(u.Username)),
			ast.Item(ast.StringTerm("uid"), ast.StringTerm(u.UID)),
			ast.Item(ast.StringTerm("groups"), ast.ArrayTerm(groups...)),
			ast.Item(ast.StringTerm("extra"), ast.NewTerm(extra)),
		))
	}
	if hasPod {
		source := values["object"]
		if source == nil {
			source = values["oldObject"]
		}
		// podView is nil when neither input.object nor input.pod is read
		// (neither was built).
		if pod := podView(source, tmplPath); pod != nil {
			obj.Insert(ast.StringTerm("pod"), ast.NewTerm(pod))
		}
	}
	return obj, nil
}

// withoutManagedFields returns obj without metadata.managedFields, sharing
// everything else. Server-side apply's record of which manager set which
// field is bookkeeping no decision should rest on, and on a typical object
// it is as large as the spec: converting it for Rego cost about 15% of an
// evaluation. obj itself is left as it is.
func withoutManagedFields(obj map[string]any) map[string]any {
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return obj
	}
	if _, ok := meta["managedFields"]; !ok {
		return obj
	}
	meta = maps.Clone(meta)
	delete(meta, "managedFields")
	obj = maps.Clone(obj)
	obj["metadata"] = meta
	return obj
}

// evalAll evaluates the policies ps in one query; any failure is returned
// so the caller can isolate it.
func (e *Engine) evalAll(ctx context.Context, ps []*policy, input ast.Value) (results map[string]any, err error) {
	all := e.combinedQuery(ps)
	if all == nil {
		return nil, errNoCombined
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			results, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	rs, err := all.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, errors.New("policies produced no result")
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policies produced %T, not an object", rs[0].Expressions[0].Value)
	}
	return m, nil
}

// evalOne evaluates one policy, containing panics and bounding its time.
func (e *Engine) evalOne(ctx context.Context, p *policy, input ast.Value) (result any, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("evaluation stopped after %s: %w", e.timeout, ctx.Err())
		}
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return []any{}, nil
	}
	return rs[0].Expressions[0].Value, nil
}

// finding turns one violation into a finding. A violation is a message
// string or an object with msg, path and optionally severity.
func (e *Engine) finding(p *policy, v any, podPrefix []any) Finding {
	f := Finding{
		Policy:      p.meta.ID,
		Title:       p.meta.Title,
		Severity:    p.meta.Severity,
		Action:      e.cfg.action(&p.meta),
		Controls:    p.meta.Controls,
		Remediation: p.meta.Remediation,
	}
	prefix := []any(nil)
	if p.meta.Scope == ScopePod {
		prefix = podPrefix
	}
	switch v := v.(type) {
	case string:
		f.Message = v
	case map[string]any:
		switch msg := v["msg"].(type) {
		case string:
			f.Message = msg
		case nil:
			f.Message = p.meta.Title
		default:
			b, _ := json.Marshal(msg)
			f.Message = string(b)
		}
		if s, ok := v["severity"].(string); ok {
			if sev, err := ParseSeverity(s); err == nil {
				f.Severity = sev
			}
		}
		switch path := v["path"].(type) {
		case []any:
			segs := slices.Clone(prefix)
			for _, s := range path {
				switch s := s.(type) {
				case json.Number:
					if n, err := s.Int64(); err == nil {
						segs = append(segs, int(n))
						continue
					}
					segs = append(segs, s.String())
				default:
					segs = append(segs, s)
				}
			}
			f.Path = FormatPath(segs)
		case string:
			if len(prefix) > 0 && path != "" {
				f.Path = FormatPath(prefix) + "." + path
			} else {
				f.Path = path
			}
		}
	default:
		b, _ := json.Marshal(v)
		f.Message = string(b)
	}
	if f.Message == "" {
		f.Message = p.meta.Title
	}
	return f
}

// prepare finds the policies that apply to an input and builds the value
// they see, with the path prefix of the pod inside the object.
func (e *Engine) prepare(in *Input) (applicable []*policy, input ast.Value, podPrefix []any, err error) {
	applicable, tmplPath, hasPod, podPrefix := e.match(in)
	if len(applicable) == 0 {
		return nil, nil, nil, nil
	}
	input, err = e.inputValue(in, e.plan(applicable), tmplPath, hasPod)
	return applicable, input, podPrefix, err
}

// match finds the policies that apply to an input, where its pod template
// is and whether it has one, and the path prefix of the pod inside the
// object.
func (e *Engine) match(in *Input) (applicable []*policy, tmplPath []string, hasPod bool, podPrefix []any) {
	obj := in.Object
	if obj == nil {
		obj = in.OldObject
	}
	tmplPath, hasTemplate := e.pods.template(in.Kind)
	hasPod = hasTemplate && obj != nil && hasPath(obj, tmplPath)
	applicable = e.applicable(in, hasPod)
	if len(applicable) == 0 {
		return nil, nil, false, nil
	}
	if hasPod {
		for _, s := range tmplPath {
			podPrefix = append(podPrefix, s)
		}
	}
	return applicable, tmplPath, hasPod, podPrefix
}

// Profile evaluates each policy that applies to the input on its own and
// reports how long each took. Evaluate runs all policies in one pass and
// cannot time them separately; the webhook profiles a sample of requests
// so per-policy cost is visible without slowing every request.
func (e *Engine) Profile(ctx context.Context, in *Input, observe func(policy string, took time.Duration)) {
	applicable, input, _, err := e.prepare(in)
	if len(applicable) == 0 || err != nil {
		return
	}
	for _, p := range applicable {
		start := time.Now()
		_, _ = e.evalOne(ctx, p, input) // errors are Evaluate's to report
		observe(p.meta.ID, time.Since(start))
	}
}

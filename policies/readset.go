package policies

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A readNode is one level of the part of the input a policy reads. A node
// that exists means the value there (if any) is read at least for its
// presence and type; whole means everything below it is read; kids and any
// are the parts below that are read, by constant key or by any key (any
// array element or object member). A present object is kept with only the
// members the node names; a present array keeps every element (pruned)
// when any is set, and none otherwise; a scalar is kept as it is.
//
// The set is conservative: whatever the analysis cannot bound is whole.
// Evaluating a policy on the input pruned to its readNode gives the same
// result as on the whole input, which is what makes both the pruning and a
// verdict cache keyed on the values at those paths sound.
type readNode struct {
	whole bool
	kids  map[string]*readNode
	any   *readNode
}

// readSeg is one step of a path: a constant object key, or any key.
type readSeg struct {
	key string
	any bool
}

type readPath []readSeg

func (p readPath) String() string {
	var b strings.Builder
	b.WriteString("input")
	for _, s := range p {
		if s.any {
			b.WriteString("[_]")
		} else {
			b.WriteString(".")
			b.WriteString(s.key)
		}
	}
	return b.String()
}

func (p readPath) plus(segs ...readSeg) readPath {
	out := make(readPath, 0, len(p)+len(segs))
	return append(append(out, p...), segs...)
}

// node returns the node at p, creating it and its parents.
func (n *readNode) node(p readPath) *readNode {
	for _, s := range p {
		if n.whole {
			return n
		}
		if s.any {
			if n.any == nil {
				n.any = &readNode{}
			}
			n = n.any
			continue
		}
		if n.kids == nil {
			n.kids = map[string]*readNode{}
		}
		k := n.kids[s.key]
		if k == nil {
			k = &readNode{}
			n.kids[s.key] = k
		}
		n = k
	}
	return n
}

// child is the node that applies to the member key of the value at n.
func (n *readNode) child(key string) *readNode {
	if n == nil || n.whole {
		return n
	}
	if k := n.kids[key]; k != nil {
		return k
	}
	return n.any
}

// merge adds everything o reads to n.
func (n *readNode) merge(o *readNode) {
	if o == nil || n.whole {
		return
	}
	if o.whole {
		*n = readNode{whole: true}
		return
	}
	if o.any != nil {
		if n.any == nil {
			n.any = &readNode{}
		}
		n.any.merge(o.any)
	}
	for k, c := range o.kids {
		if n.kids == nil {
			n.kids = map[string]*readNode{}
		}
		if n.kids[k] == nil {
			n.kids[k] = &readNode{}
		}
		n.kids[k].merge(c)
	}
}

// normalize folds what any key reads into each constant key's node, so a
// lookup needs only child(key); it returns n.
func (n *readNode) normalize() *readNode {
	if n == nil {
		return nil
	}
	if n.whole {
		n.kids, n.any = nil, nil
		return n
	}
	if n.any != nil {
		n.any.normalize()
		for _, k := range n.kids {
			k.merge(n.any)
		}
	}
	for _, k := range n.kids {
		k.normalize()
	}
	return n
}

// paths lists what n reads, one line per leaf, for tests and diagnostics:
// "input.object.metadata.name", "input.pod.spec.containers[_].image (type)"
// for a presence or type read.
func (n *readNode) paths() []string {
	var out []string
	var walk func(n *readNode, p readPath)
	walk = func(n *readNode, p readPath) {
		switch {
		case n.whole:
			out = append(out, p.String())
			return
		case n.any == nil && len(n.kids) == 0:
			if len(p) > 0 { // the input itself is always an object
				out = append(out, p.String()+" (type)")
			}
			return
		}
		if n.any != nil {
			walk(n.any, p.plus(readSeg{any: true}))
		}
		for _, k := range sortedKeys(n.kids) {
			walk(n.kids[k], p.plus(readSeg{key: k}))
		}
	}
	walk(n, nil)
	slices.Sort(out)
	return out
}

// readSet is what one policy reads and whether its verdict may be cached.
type readSet struct {
	root *readNode
	// uncacheable says why the policy's verdict is never cached; empty if
	// it may be.
	uncacheable string
}

// nondeterministic lists builtins whose result does not follow from their
// arguments, besides those OPA itself marks nondeterministic: time, chance,
// the network, the runtime, and verifications that compare with the clock.
var nondeterministic = map[string]bool{
	"http.send": true, "opa.runtime": true, "rand.intn": true, "uuid.rfc4122": true,
	"time.now_ns": true, "net.lookup_ip_addr": true, "io.jwt.decode_verify": true,
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
	"trace": true, "print": true, "internal.print": true,
}

// pureTollgateBuiltins are the engine's own builtins known to depend only on
// their arguments; any other added builtin may read state outside the input
// (a cluster, a registry), so a policy calling it is never cached.
var pureTollgateBuiltins = map[string]bool{
	"tollgate.parse_image":    true,
	"tollgate.parse_quantity": true,
	"tollgate.pod_requests":   true,
}

// typeChecks only look at the kind of their argument.
var typeChecks = map[string]bool{
	"is_object": true, "is_array": true, "is_string": true, "is_number": true,
	"is_boolean": true, "is_null": true, "is_set": true, "type_name": true,
}

// analyzeReads finds what the policy whose violation rules are at ref reads
// of input, following every rule and function it refers to.
func analyzeReads(c *ast.Compiler, ref ast.Ref) (rs readSet) {
	defer func() {
		// A shape the analysis does not expect must not stop the
		// policy from loading: it reads everything, uncached.
		if r := recover(); r != nil {
			rs = readSet{root: &readNode{whole: true}, uncacheable: fmt.Sprintf("its reads could not be analysed: %v", r)}
		}
	}()
	a := &readAnalyzer{c: c, root: &readNode{}, rules: map[*ast.Rule]*ruleReads{}}
	a.dataRef(ref)
	return readSet{root: a.root.normalize(), uncacheable: a.uncacheable}
}

type readAnalyzer struct {
	c           *ast.Compiler
	root        *readNode
	uncacheable string
	rules       map[*ast.Rule]*ruleReads
}

// ruleReads is an analysed rule: the input paths its value is (for a
// complete rule whose value is a part of the input, or nothing).
type ruleReads struct {
	busy    bool
	aliases []readPath
}

func (a *readAnalyzer) notCacheable(format string, args ...any) {
	if a.uncacheable == "" {
		a.uncacheable = fmt.Sprintf(format, args...)
	}
}

// How a term's value is used where it occurs.
type useCtx int

const (
	ctxWhole useCtx = iota // its whole value matters
	ctxType                // only its presence and kind
	ctxIter                // its members are iterated
	ctxBind                // it is bound to a variable that is followed
	ctxHead                // it is the value of a rule that is followed
)

// scope is one rule body (with everything nested in it): its variables'
// occurrences and, for those that stand for a part of the input, the
// term they are bound to.
type scope struct {
	a      *readAnalyzer
	counts map[ast.Var]*varUses
	rule   *ruleReads
	// resolving guards alias resolution against cycles.
	resolving map[ast.Var]bool
}

type varUses struct {
	binds  int
	others int
	source *ast.Term // what a single binding binds it to
	iter   bool      // the source's members, not the source itself
}

func (a *readAnalyzer) markWhole(paths []readPath) {
	for _, p := range paths {
		a.root.node(p).whole = true
	}
}

func (a *readAnalyzer) use(paths []readPath, ctx useCtx) {
	for _, p := range paths {
		switch ctx {
		case ctxWhole:
			a.root.node(p).whole = true
		case ctxIter:
			a.root.node(p.plus(readSeg{any: true}))
		default:
			a.root.node(p)
		}
	}
}

// rule analyses a rule (and its else chain) once, returning what its
// value aliases.
func (a *readAnalyzer) rule(r *ast.Rule) *ruleReads {
	if rr := a.rules[r]; rr != nil {
		if rr.busy {
			// Rego forbids recursion; stay conservative if it happens.
			a.root.whole = true
		}
		return rr
	}
	rr := &ruleReads{busy: true}
	a.rules[r] = rr
	aliasable := len(r.Head.Args) == 0 && r.Head.Key == nil && r.Head.Ref().IsGround()
	for x := r; x != nil; x = x.Else {
		s := &scope{a: a, counts: map[ast.Var]*varUses{}, rule: rr, resolving: map[ast.Var]bool{}}
		s.count(x, aliasable)
		s.visitRule(x, aliasable)
	}
	rr.busy = false
	return rr
}

// count records how each variable of a rule body occurs.
func (s *scope) count(r *ast.Rule, aliasable bool) {
	other := func(t *ast.Term) {
		ast.WalkVars(t, func(v ast.Var) bool {
			s.uses(v).others++
			return false
		})
	}
	// Head: a followed rule's value may be a variable without reading it.
	if aliasable && r.Head.Value != nil {
		if _, ok := r.Head.Value.Value.(ast.Var); !ok {
			other(r.Head.Value)
		}
	} else if r.Head.Value != nil {
		other(r.Head.Value)
	}
	if r.Head.Key != nil {
		other(r.Head.Key)
	}
	for _, arg := range r.Head.Args {
		other(arg)
	}
	for _, ref := range r.Head.Ref()[1:] {
		other(ref)
	}
	var body func(b ast.Body)
	var term func(t *ast.Term)
	term = func(t *ast.Term) {
		switch v := t.Value.(type) {
		case ast.Var:
			s.uses(v).others++
		case ast.Ref:
			// The head of a ref is followed, not read whole.
			if _, ok := v[0].Value.(ast.Var); !ok {
				term(v[0])
			}
			for _, seg := range v[1:] {
				term(seg)
			}
		case *ast.ArrayComprehension:
			term(v.Term)
			body(v.Body)
		case *ast.SetComprehension:
			term(v.Term)
			body(v.Body)
		case *ast.ObjectComprehension:
			term(v.Key)
			term(v.Value)
			body(v.Body)
		default:
			ast.WalkTerms(t, func(x *ast.Term) bool {
				if x == t {
					return false
				}
				term(x)
				return true
			})
		}
	}
	body = func(b ast.Body) {
		for _, e := range b {
			for _, w := range e.With {
				term(w.Value)
			}
			switch ts := e.Terms.(type) {
			case *ast.Term:
				term(ts)
			case []*ast.Term:
				op := e.Operator().String()
				if (op == "eq" || op == "assign") && len(ts) == 3 && !e.Negated && len(e.With) == 0 {
					l, r := ts[1], ts[2]
					if v, ok := l.Value.(ast.Var); ok && isSource(r) {
						s.bind(v, r, false)
						if isRef(r) {
							term(r)
						}
						continue
					}
					if v, ok := r.Value.(ast.Var); ok && isRef(l) {
						s.bind(v, l, false)
						term(l)
						continue
					}
				}
				if (typeChecks[op] || op == "object.get" && len(ts) >= 4) && len(ts) >= 2 {
					if _, ok := ts[1].Value.(ast.Var); !ok {
						term(ts[1])
					}
					for _, t := range ts[2:] {
						term(t)
					}
					continue
				}
				for _, t := range ts[1:] {
					term(t)
				}
			case *ast.Every:
				if v, ok := e.Terms.(*ast.Every).Value.Value.(ast.Var); ok {
					s.bind(v, ts.Domain, true)
				}
				if ts.Key != nil {
					term(ts.Key)
				}
				if _, ok := ts.Domain.Value.(ast.Var); !ok {
					term(ts.Domain)
				}
				body(ts.Body)
			case *ast.SomeDecl:
				// Declarations only; their use is in the body.
			}
		}
	}
	body(r.Body)
}

// isSource holds for what a followed variable may be bound to: a ref, or
// another variable (x := y compiles to x = y; y is then followed through x,
// or read whole where x is not followed).
func isRef(t *ast.Term) bool {
	_, ok := t.Value.(ast.Ref)
	return ok
}

func isSource(t *ast.Term) bool {
	switch t.Value.(type) {
	case ast.Ref, ast.Var:
		return true
	}
	return false
}

func (s *scope) uses(v ast.Var) *varUses {
	u := s.counts[v]
	if u == nil {
		u = &varUses{}
		s.counts[v] = u
	}
	return u
}

func (s *scope) bind(v ast.Var, source *ast.Term, iter bool) {
	u := s.uses(v)
	u.binds++
	u.source, u.iter = source, iter
}

// alias reports whether v stands for a part of the input that is followed
// through its uses: bound once, to a ref or an iteration, and otherwise only
// dereferenced, type-checked, iterated or returned.
func (s *scope) alias(v ast.Var) bool {
	u := s.counts[v]
	return u != nil && u.binds == 1 && u.others == 0
}

// varPaths is what an alias variable stands for.
func (s *scope) varPaths(v ast.Var) []readPath {
	if !s.alias(v) || s.resolving[v] {
		if s.resolving[v] {
			s.a.root.whole = true
		}
		return nil
	}
	s.resolving[v] = true
	defer delete(s.resolving, v)
	u := s.counts[v]
	ps := s.termPaths(u.source)
	if u.iter {
		for i, p := range ps {
			ps[i] = p.plus(readSeg{any: true})
		}
	}
	return ps
}

// termPaths is the part of the input a term's value is, if it is one (an
// input ref, an alias variable or a ref through one, a ref into a rule
// whose value is one). Refs into rules are followed as a side effect.
func (s *scope) termPaths(t *ast.Term) []readPath {
	switch v := t.Value.(type) {
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			return []readPath{nil}
		}
		return s.varPaths(v)
	case ast.Ref:
		segs := make([]readSeg, 0, len(v)-1)
		for _, seg := range v[1:] {
			if str, ok := seg.Value.(ast.String); ok {
				segs = append(segs, readSeg{key: string(str)})
			} else {
				segs = append(segs, readSeg{any: true})
			}
		}
		var base []readPath
		switch {
		case v[0].Equal(ast.InputRootDocument):
			base = []readPath{nil}
		case v[0].Equal(ast.DefaultRootDocument):
			return s.a.dataRef(v)
		default:
			if hv, ok := v[0].Value.(ast.Var); ok {
				base = s.varPaths(hv)
			}
		}
		out := make([]readPath, len(base))
		for i, b := range base {
			out[i] = b.plus(segs...)
		}
		return out
	}
	return nil
}

// dataRef follows a ref into data: the rules it reaches are analysed; it
// returns the input paths its value is when it reaches into a rule whose
// value is a part of the input; otherwise every rule it may reach is used
// as a whole.
func (a *readAnalyzer) dataRef(ref ast.Ref) []readPath {
	for k := len(ref); k >= 2; k-- {
		prefix := ref[:k]
		if !prefix.IsGround() {
			continue
		}
		rules := a.c.GetRulesExact(prefix)
		if len(rules) == 0 {
			continue
		}
		rest := make([]readSeg, 0, len(ref)-k)
		for _, seg := range ref[k:] {
			if str, ok := seg.Value.(ast.String); ok {
				rest = append(rest, readSeg{key: string(str)})
			} else {
				rest = append(rest, readSeg{any: true})
			}
		}
		var out []readPath
		for _, r := range rules {
			for _, p := range a.rule(r).aliases {
				out = append(out, p.plus(rest...))
			}
		}
		return out
	}
	// The ref names a document above the rules (a package, or a path
	// with a variable): any rule below may be read as a whole.
	for _, r := range a.c.GetRules(ref.GroundPrefix()) {
		a.markWhole(a.rule(r).aliases)
	}
	if len(ref.GroundPrefix()) <= 1 {
		for _, r := range a.c.GetRulesWithPrefix(ast.Ref{ast.DefaultRootDocument}) {
			a.markWhole(a.rule(r).aliases)
		}
	}
	return nil
}

// visitRule records what a rule reads, given how its variables occur.
func (s *scope) visitRule(r *ast.Rule, aliasable bool) {
	if r.Head.Value != nil {
		if aliasable {
			if ps := s.termPaths(r.Head.Value); ps != nil || isAliasTerm(r.Head.Value) {
				s.a.use(ps, ctxHead)
				s.rule.aliases = append(s.rule.aliases, ps...)
			} else {
				s.term(r.Head.Value, ctxWhole)
			}
		} else {
			s.term(r.Head.Value, ctxWhole)
		}
	}
	if r.Head.Key != nil {
		s.term(r.Head.Key, ctxWhole)
	}
	for _, t := range r.Head.Args {
		s.term(t, ctxWhole)
	}
	for _, t := range r.Head.Ref()[1:] {
		s.term(t, ctxWhole)
	}
	s.body(r.Body)
}

// isAliasTerm holds for the terms a followed value may be.
func isAliasTerm(t *ast.Term) bool {
	switch t.Value.(type) {
	case ast.Var, ast.Ref:
		return true
	}
	return false
}

func (s *scope) body(b ast.Body) {
	for _, e := range b {
		s.expr(e)
	}
}

func (s *scope) expr(e *ast.Expr) {
	for _, w := range e.With {
		// `with input` or `with data` evaluates the policy on other
		// documents than the ones given: never bounded.
		if ref, ok := w.Target.Value.(ast.Ref); ok && (ref[0].Equal(ast.InputRootDocument) || ref[0].Equal(ast.DefaultRootDocument)) {
			s.a.root.whole = true
		}
		s.term(w.Value, ctxWhole)
	}
	switch ts := e.Terms.(type) {
	case *ast.Term:
		s.term(ts, ctxWhole)
	case []*ast.Term:
		s.call(e, ts)
	case *ast.Every:
		s.term(ts.Domain, ctxIter)
		if ts.Key != nil {
			s.term(ts.Key, ctxWhole)
		}
		s.body(ts.Body)
	}
}

func (s *scope) call(e *ast.Expr, ts []*ast.Term) {
	opRef, _ := ts[0].Value.(ast.Ref)
	op := opRef.String()
	if (op == "eq" || op == "assign") && len(ts) == 3 && !e.Negated && len(e.With) == 0 {
		l, r := ts[1], ts[2]
		if v, ok := l.Value.(ast.Var); ok && isSource(r) && s.alias(v) {
			s.term(r, ctxBind)
			return
		}
		if v, ok := r.Value.(ast.Var); ok && isSource(l) && s.alias(v) {
			s.term(l, ctxBind)
			return
		}
	}
	switch {
	case len(opRef) > 0 && opRef[0].Equal(ast.DefaultRootDocument):
		// A function of a policy or a library: its body is followed;
		// what it is given is read whole.
		s.a.dataRef(opRef)
	default:
		b := ast.BuiltinMap[op]
		switch {
		case b == nil && !pureTollgateBuiltins[op]:
			s.a.notCacheable("calls %s, which may read state outside the input", op)
		case b != nil && (b.Nondeterministic || nondeterministic[op]):
			s.a.notCacheable("calls %s, which is not deterministic", op)
		}
	}
	args := ts[1:]
	if op == "object.get" && len(args) >= 3 {
		// object.get(x, path, default) reads x at path when path is a
		// key or a literal array of keys (a variable key is any key).
		if segs, ok := getPath(args[1]); ok {
			ps := s.termPaths(args[0])
			if ps == nil && isAliasTerm(args[0]) {
				s.term(args[0], ctxWhole)
			}
			for i, p := range ps {
				ps[i] = p.plus(segs...)
			}
			s.a.use(ps, ctxWhole)
			args = args[1:]
		}
	}
	if typeChecks[op] && len(args) >= 1 {
		s.term(args[0], ctxType)
		args = args[1:]
	}
	for _, t := range args {
		s.term(t, ctxWhole)
	}
}

// getPath reads object.get's path argument: a key, or an array of keys.
func getPath(t *ast.Term) ([]readSeg, bool) {
	switch v := t.Value.(type) {
	case ast.String:
		return []readSeg{{key: string(v)}}, true
	case *ast.Array:
		segs := make([]readSeg, 0, v.Len())
		ok := true
		v.Foreach(func(x *ast.Term) {
			switch k := x.Value.(type) {
			case ast.String:
				segs = append(segs, readSeg{key: string(k)})
			case ast.Var, ast.Number:
				segs = append(segs, readSeg{any: true})
			default:
				ok = false
			}
		})
		return segs, ok
	}
	return nil, false
}

// term records what a term reads when its value is used as ctx says.
func (s *scope) term(t *ast.Term, ctx useCtx) {
	switch v := t.Value.(type) {
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			s.a.use([]readPath{nil}, ctx)
			return
		}
		if v.Equal(ast.DefaultRootDocument.Value) {
			s.a.dataRef(ast.Ref{t})
			return
		}
		if s.alias(v) {
			if ctx == ctxBind {
				ctx = ctxType
			}
			s.a.use(s.varPaths(v), ctx)
		}
	case ast.Ref:
		if _, ok := v[0].Value.(ast.Var); !ok {
			s.term(v[0], ctxWhole)
		}
		for _, seg := range v[1:] {
			switch seg.Value.(type) {
			case ast.String, ast.Number, ast.Boolean, ast.Null:
			default:
				s.term(seg, ctxWhole)
			}
		}
		ps := s.termPaths(t)
		if ctx == ctxBind {
			ctx = ctxType
		}
		if v[0].Equal(ast.DefaultRootDocument) && ps == nil {
			// Followed into the rules it reaches, which record their
			// own reads.
			return
		}
		s.a.use(ps, ctx)
	case *ast.ArrayComprehension:
		s.term(v.Term, ctxWhole)
		s.body(v.Body)
	case *ast.SetComprehension:
		s.term(v.Term, ctxWhole)
		s.body(v.Body)
	case *ast.ObjectComprehension:
		s.term(v.Key, ctxWhole)
		s.term(v.Value, ctxWhole)
		s.body(v.Body)
	case ast.Call:
		s.call(&ast.Expr{Terms: []*ast.Term(v)}, v)
	default:
		ast.WalkTerms(t, func(x *ast.Term) bool {
			if x == t {
				return false
			}
			s.term(x, ctxWhole)
			return true
		})
	}
}

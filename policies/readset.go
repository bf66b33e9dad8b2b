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
	a := &readAnalyzer{c: c, root: &readNode{}, rules: map[*ast.Rule]*ruleReads{}, calls: map[string]*ruleReads{}}
	// The violations are the verdict: every part of them is used.
	top := &scope{a: a, counts: map[ast.Var]*varUses{}, domains: map[ast.Var][]string{}}
	a.useShape(a.dataRef(ref, top, false), ctxWhole)
	return readSet{root: a.root.normalize(), uncacheable: a.uncacheable}
}

// A valueShape says where parts of the input sit in a value: the value is
// one of paths, or it is a composite built by the policy whose members
// (fields, by constant key; array elements by their index) or elements
// (elems: of a set a rule or comprehension collects, or an array a
// comprehension builds) are. A nil shape holds no part of the input.
//
// Following a value through rules, functions and composites, rather than
// reading whole whatever enters one, is what lets a helper wrap each
// container in an object and a policy read only the container fields it
// looks at.
type valueShape struct {
	paths  []readPath
	fields map[string]*valueShape
	elems  *valueShape
}

// union is everything a or b may be.
func union(a, b *valueShape) *valueShape {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := &valueShape{paths: slices.Clone(a.paths), elems: union(a.elems, b.elems)}
	seen := map[string]bool{}
	for _, p := range a.paths {
		seen[p.String()] = true
	}
	for _, p := range b.paths {
		if !seen[p.String()] {
			seen[p.String()] = true
			out.paths = append(out.paths, p)
		}
	}
	if len(a.fields)+len(b.fields) > 0 {
		out.fields = map[string]*valueShape{}
		for k, f := range a.fields {
			out.fields[k] = f
		}
		for k, f := range b.fields {
			out.fields[k] = union(out.fields[k], f)
		}
	}
	return out
}

// deref is the shape of the value's member at seg. An any seg may be any
// member, or any element of a collected set.
func (sh *valueShape) deref(seg readSeg) *valueShape {
	if sh == nil {
		return nil
	}
	var out *valueShape
	if len(sh.paths) > 0 {
		out = &valueShape{paths: make([]readPath, len(sh.paths))}
		for i, p := range sh.paths {
			out.paths[i] = p.plus(seg)
		}
	}
	if seg.any {
		for _, k := range sortedKeys(sh.fields) {
			out = union(out, sh.fields[k])
		}
		return union(out, sh.elems)
	}
	return union(out, sh.fields[seg.key])
}

// key identifies a shape, to analyse a function once per shape of its
// arguments.
func (sh *valueShape) key() string {
	if sh == nil {
		return "-"
	}
	ps := make([]string, len(sh.paths))
	for i, p := range sh.paths {
		ps[i] = p.String()
	}
	slices.Sort(ps)
	var b strings.Builder
	b.WriteString("(" + strings.Join(ps, ",") + "{")
	for _, k := range sortedKeys(sh.fields) {
		fmt.Fprintf(&b, "%q:%s,", k, sh.fields[k].key())
	}
	b.WriteString("}" + sh.elems.key() + ")")
	return b.String()
}

type readAnalyzer struct {
	c           *ast.Compiler
	root        *readNode
	uncacheable string
	rules       map[*ast.Rule]*ruleReads
	// calls are the functions analysed, by rule and argument shapes.
	calls map[string]*ruleReads
}

// ruleReads is an analysed rule or function call: the shape of its value.
type ruleReads struct {
	busy  bool
	value *valueShape
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
)

// useShape records that a value of shape sh is used as ctx says.
func (a *readAnalyzer) useShape(sh *valueShape, ctx useCtx) {
	if sh == nil {
		return
	}
	for _, p := range sh.paths {
		switch ctx {
		case ctxWhole:
			a.root.node(p).whole = true
		case ctxIter:
			a.root.node(p.plus(readSeg{any: true}))
		default:
			a.root.node(p)
		}
	}
	switch ctx {
	case ctxWhole:
		for _, f := range sh.fields {
			a.useShape(f, ctxWhole)
		}
		a.useShape(sh.elems, ctxWhole)
	case ctxIter:
		for _, f := range sh.fields {
			a.useShape(f, ctxType)
		}
		a.useShape(sh.elems, ctxType)
	}
}

// scope is one rule body (with everything nested in it): its variables'
// occurrences and, for those that stand for a value holding parts of the
// input, what they are bound to.
type scope struct {
	a      *readAnalyzer
	counts map[ast.Var]*varUses
	// params are the shapes of a function's arguments.
	params map[ast.Var]*valueShape
	// resolving guards resolution against cycles.
	resolving map[ast.Var]bool
	// inArray counts the array comprehensions the visit is inside.
	inArray int
	// domains are the keys a variable may be: it is a key into a
	// constant object of a rule, in the rule's body itself.
	domains map[ast.Var][]string
}

type varUses struct {
	binds  int
	others int
	source *ast.Term // what a single binding binds it to
	call   *ast.Expr // or the call of a function whose result it is
	param  bool      // or a function's argument
	iter   bool      // the source's members, not the source itself
	// inArray: the binding is inside an array comprehension, which
	// counts each element of a set it iterates.
	inArray bool
}

// isFollowed says whether a rule's value is followed into where it is used
// (a complete rule, a partial set rule, a function), not read whole.
func isFollowed(r *ast.Rule) bool {
	if !r.Head.Ref().IsGround() {
		return false
	}
	if len(r.Head.Args) > 0 {
		return r.Head.Key == nil
	}
	return r.Head.RuleKind() == ast.MultiValue && r.Head.Value == nil || r.Head.Key == nil
}

// rule analyses a rule that is not a function (and its else chain) once,
// returning the shape of its value.
func (a *readAnalyzer) rule(r *ast.Rule) *ruleReads {
	if len(r.Head.Args) > 0 {
		return a.call(r, nil)
	}
	if rr := a.rules[r]; rr != nil {
		if rr.busy {
			// Rego forbids recursion; stay conservative if it happens.
			a.root.whole = true
		}
		return rr
	}
	rr := &ruleReads{busy: true}
	a.rules[r] = rr
	a.visit(r, rr, nil)
	rr.busy = false
	return rr
}

// call analyses a function (one of its definitions, with its else chain)
// called with arguments of the shapes given, once per shape.
func (a *readAnalyzer) call(r *ast.Rule, args []*valueShape) *ruleReads {
	var b strings.Builder
	fmt.Fprintf(&b, "%p", r)
	for i := range r.Head.Args {
		var sh *valueShape
		if i < len(args) {
			sh = args[i]
		}
		b.WriteString("|" + sh.key())
	}
	k := b.String()
	if rr := a.calls[k]; rr != nil {
		if rr.busy {
			a.root.whole = true
		}
		return rr
	}
	rr := &ruleReads{busy: true}
	a.calls[k] = rr
	a.visit(r, rr, args)
	rr.busy = false
	return rr
}

func (a *readAnalyzer) visit(r *ast.Rule, rr *ruleReads, args []*valueShape) {
	followed := isFollowed(r)
	for x := r; x != nil; x = x.Else {
		s := &scope{a: a, counts: map[ast.Var]*varUses{}, params: map[ast.Var]*valueShape{}, resolving: map[ast.Var]bool{}, domains: map[ast.Var][]string{}}
		s.keyDomains(x.Body)
		for i, t := range x.Head.Args {
			if v, ok := t.Value.(ast.Var); ok && i < len(args) {
				s.params[v] = args[i]
			}
		}
		s.count(x, followed)
		s.visitRule(x, rr, followed, args)
	}
}

// count records how each variable of a rule body occurs. An occurrence
// where the value flows on (into a followed head, a composite, a binding,
// a function's argument) is not counted against following the variable:
// its shape goes with the value and is used where the value is.
func (s *scope) count(r *ast.Rule, followed bool) {
	depth := 0
	var body func(b ast.Body)
	var term func(t *ast.Term, flow bool)
	term = func(t *ast.Term, flow bool) {
		switch v := t.Value.(type) {
		case ast.Var:
			if !flow {
				s.uses(v).others++
			}
		case ast.Ref:
			// The head of a ref is followed, not read whole.
			if _, ok := v[0].Value.(ast.Var); !ok {
				term(v[0], false)
			}
			for _, seg := range v[1:] {
				term(seg, false)
			}
		case ast.Object:
			v.Foreach(func(k, x *ast.Term) {
				term(k, false)
				term(x, flow)
			})
		case *ast.Array:
			v.Foreach(func(x *ast.Term) { term(x, flow) })
		case *ast.ArrayComprehension:
			depth++
			term(v.Term, true)
			body(v.Body)
			depth--
		case *ast.SetComprehension:
			term(v.Term, true)
			body(v.Body)
		case *ast.ObjectComprehension:
			term(v.Key, false)
			term(v.Value, false)
			body(v.Body)
		default:
			ast.WalkTerms(t, func(x *ast.Term) bool {
				if x == t {
					return false
				}
				term(x, false)
				return true
			})
		}
	}
	for _, arg := range r.Head.Args {
		if v, ok := arg.Value.(ast.Var); ok {
			u := s.uses(v)
			u.binds++
			u.param = true
			continue
		}
		term(arg, false)
	}
	if r.Head.Value != nil {
		term(r.Head.Value, followed && r.Head.Key == nil)
	}
	if r.Head.Key != nil {
		term(r.Head.Key, followed && r.Head.Value == nil)
	}
	for _, ref := range r.Head.Ref()[1:] {
		term(ref, false)
	}
	body = func(b ast.Body) {
		for _, e := range b {
			for _, w := range e.With {
				term(w.Value, false)
			}
			switch ts := e.Terms.(type) {
			case *ast.Term:
				term(ts, false)
			case []*ast.Term:
				op := e.Operator().String()
				if (op == "eq" || op == "assign") && len(ts) == 3 && !e.Negated && len(e.With) == 0 {
					l, r := ts[1], ts[2]
					if v, ok := l.Value.(ast.Var); ok && isSource(r) {
						s.bind(v, r, false, depth > 0)
						term(r, true)
						continue
					}
					if v, ok := r.Value.(ast.Var); ok && isSource(l) {
						s.bind(v, l, false, depth > 0)
						term(l, true)
						continue
					}
				}
				if fn, n := s.function(ts[0]); fn && len(e.With) == 0 {
					for i, t := range ts[1:] {
						if i < n {
							term(t, true)
						} else if v, ok := t.Value.(ast.Var); ok && !e.Negated {
							u := s.uses(v)
							u.binds++
							u.call, u.inArray = e, depth > 0
						} else {
							term(t, false)
						}
					}
					continue
				}
				if (typeChecks[op] || op == "object.get" && len(ts) >= 4) && len(ts) >= 2 {
					if _, ok := ts[1].Value.(ast.Var); !ok {
						term(ts[1], false)
					}
					for _, t := range ts[2:] {
						term(t, false)
					}
					continue
				}
				for _, t := range ts[1:] {
					term(t, false)
				}
			case *ast.Every:
				if v, ok := ts.Value.Value.(ast.Var); ok {
					s.bind(v, ts.Domain, true, depth > 0)
				}
				if ts.Key != nil {
					term(ts.Key, false)
				}
				if _, ok := ts.Domain.Value.(ast.Var); !ok {
					term(ts.Domain, false)
				}
				body(ts.Body)
			case *ast.SomeDecl:
				// Declarations only; their use is in the body.
			}
		}
	}
	body(r.Body)
}

// function reports whether op names a function of a policy or library,
// and how many arguments it takes.
func (s *scope) function(op *ast.Term) (bool, int) {
	ref, ok := op.Value.(ast.Ref)
	if !ok || !ref[0].Equal(ast.DefaultRootDocument) || !ref.IsGround() {
		return false, 0
	}
	rules := s.a.c.GetRulesExact(ref)
	if len(rules) == 0 {
		return false, 0
	}
	return true, len(rules[0].Head.Args)
}

// isSource holds for what a followed variable may be bound to: a ref,
// another variable (x := y compiles to x = y; y is then followed through x,
// or read whole where x is not followed), or a composite or comprehension
// the policy builds.
func isSource(t *ast.Term) bool {
	switch t.Value.(type) {
	case ast.Ref, ast.Var, ast.Object, *ast.Array, *ast.ArrayComprehension, *ast.SetComprehension:
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

func (s *scope) bind(v ast.Var, source *ast.Term, iter, inArray bool) {
	u := s.uses(v)
	u.binds++
	u.source, u.iter, u.inArray = source, iter, inArray
}

// alias reports whether v is followed through its uses: bound once (to a
// source, a function's result or as an argument) and otherwise only
// dereferenced, type-checked, iterated or passed on.
func (s *scope) alias(v ast.Var) bool {
	u := s.counts[v]
	return u != nil && u.binds == 1 && u.others == 0
}

// varShape is the shape of what an alias variable stands for.
func (s *scope) varShape(v ast.Var) *valueShape {
	if !s.alias(v) || s.resolving[v] {
		if s.resolving[v] {
			s.a.root.whole = true
		}
		return nil
	}
	s.resolving[v] = true
	defer delete(s.resolving, v)
	u := s.counts[v]
	switch {
	case u.param:
		return s.params[v]
	case u.call != nil:
		ts := u.call.Terms.([]*ast.Term)
		_, n := s.function(ts[0])
		return s.callShape(ts[:n+1], u.inArray)
	}
	sh := s.shapeAt(u.source, u.inArray)
	if u.iter {
		sh = s.iterate(sh, u.inArray)
	}
	return sh
}

// iterate is the shape of any member of a value; inside an array
// comprehension a set's elements are counted, which depends on all of
// each element, so they are read whole.
func (s *scope) iterate(sh *valueShape, inArray bool) *valueShape {
	if inArray && sh != nil && sh.elems != nil {
		s.a.useShape(sh.elems, ctxWhole)
	}
	return sh.deref(readSeg{any: true})
}

// derefTerm is the shape of the member of a value of shape sh at the key
// seg: a constant key, one of the keys a variable may be, or any member.
func (s *scope) derefTerm(sh *valueShape, seg *ast.Term, inArray bool) *valueShape {
	switch k := seg.Value.(type) {
	case ast.String:
		return sh.deref(readSeg{key: string(k)})
	case ast.Var:
		if keys, ok := s.domains[k]; ok && (sh == nil || sh.elems == nil) {
			var out *valueShape
			for _, key := range keys {
				out = union(out, sh.deref(readSeg{key: key}))
			}
			return out
		}
		if u := s.counts[k]; u != nil && u.binds == 0 && u.others == 1 {
			// A variable that occurs nowhere else iterates.
			return s.iterate(sh, inArray)
		}
	case ast.Number, ast.Boolean, ast.Null:
		// A scalar is no composite element of a set; a scalar element
		// is kept as it is.
		return sh.deref(readSeg{any: true})
	}
	if sh != nil && sh.elems != nil {
		// A lookup of a set by a value compares that value with each
		// element as a whole.
		s.a.useShape(sh.elems, ctxWhole)
	}
	return sh.deref(readSeg{any: true})
}

// keyDomains finds the variables of a body that are keys into a constant
// object a rule defines (data.lib._fields[k]) in an expression every
// solution of the body satisfies: each such variable is one of the
// object's keys wherever else it is used in the body.
func (s *scope) keyDomains(b ast.Body) {
	for _, e := range b {
		ts, ok := e.Terms.([]*ast.Term)
		if !ok || e.Negated || len(e.With) > 0 {
			continue
		}
		for _, t := range ts[1:] {
			ref, ok := t.Value.(ast.Ref)
			if !ok || !ref[0].Equal(ast.DefaultRootDocument) {
				continue
			}
			for i := 2; i < len(ref); i++ {
				v, ok := ref[i].Value.(ast.Var)
				if !ok {
					continue
				}
				keys, ok := s.a.constantKeys(ref[:i])
				if !ok {
					break
				}
				if old, seen := s.domains[v]; seen {
					keys = slices.DeleteFunc(keys, func(k string) bool { return !slices.Contains(old, k) })
				}
				s.domains[v] = keys
				break
			}
		}
	}
}

// constantKeys lists the keys of the object a single rule at ref defines
// as a constant, unconditionally.
func (a *readAnalyzer) constantKeys(ref ast.Ref) ([]string, bool) {
	if !ref.IsGround() {
		return nil, false
	}
	rules := a.c.GetRulesExact(ref)
	if len(rules) != 1 {
		return nil, false
	}
	r := rules[0]
	if r.Else != nil || len(r.Head.Args) > 0 || r.Head.Key != nil || r.Head.Value == nil || !r.Head.Value.IsGround() ||
		len(r.Body) != 1 || !r.Body[0].IsGround() || !r.Body[0].Equal(ast.NewExpr(ast.BooleanTerm(true))) {
		return nil, false
	}
	obj, ok := r.Head.Value.Value.(ast.Object)
	if !ok {
		return nil, false
	}
	var keys []string
	for _, k := range obj.Keys() {
		str, ok := k.Value.(ast.String)
		if !ok {
			return nil, false
		}
		keys = append(keys, string(str))
	}
	return keys, true
}

// termShape is the shape of a term's value. Refs into rules and calls of
// functions are followed as a side effect.
func (s *scope) termShape(t *ast.Term) *valueShape { return s.shapeAt(t, s.inArray > 0) }

func (s *scope) shapeAt(t *ast.Term, inArray bool) *valueShape {
	switch v := t.Value.(type) {
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			return &valueShape{paths: []readPath{nil}}
		}
		return s.varShape(v)
	case ast.Ref:
		var base *valueShape
		rest := v[1:]
		switch {
		case v[0].Equal(ast.InputRootDocument):
			base = &valueShape{paths: []readPath{nil}}
		case v[0].Equal(ast.DefaultRootDocument):
			return s.a.dataRef(v, s, inArray)
		default:
			if hv, ok := v[0].Value.(ast.Var); ok {
				base = s.varShape(hv)
			}
		}
		for _, seg := range rest {
			base = s.derefTerm(base, seg, inArray)
		}
		return base
	case ast.Object:
		var out *valueShape
		v.Foreach(func(k, x *ast.Term) {
			f := s.shapeAt(x, inArray)
			if f == nil {
				return
			}
			key, ok := k.Value.(ast.String)
			if !ok {
				// A computed key: any member may be this one.
				out = union(out, &valueShape{elems: f})
				return
			}
			if out == nil {
				out = &valueShape{}
			}
			if out.fields == nil {
				out.fields = map[string]*valueShape{}
			}
			out.fields[string(key)] = union(out.fields[string(key)], f)
		})
		return out
	case *ast.Array:
		var out *valueShape
		for i := range v.Len() {
			if f := s.shapeAt(v.Elem(i), inArray); f != nil {
				if out == nil {
					out = &valueShape{fields: map[string]*valueShape{}}
				}
				out.fields[fmt.Sprint(i)] = f
			}
		}
		return out
	case *ast.ArrayComprehension:
		if h := s.shapeAt(v.Term, true); h != nil {
			return &valueShape{elems: h}
		}
	case *ast.SetComprehension:
		if h := s.shapeAt(v.Term, false); h != nil {
			return &valueShape{elems: h}
		}
	}
	return nil
}

// callShape is the shape of a function call's result, its arguments
// given as terms.
func (s *scope) callShape(ts []*ast.Term, inArray bool) *valueShape {
	ref := ts[0].Value.(ast.Ref)
	rules := s.a.c.GetRulesExact(ref)
	args := make([]*valueShape, 0, len(ts)-1)
	for _, t := range ts[1:] {
		args = append(args, s.shapeAt(t, inArray))
	}
	var out *valueShape
	for _, r := range rules {
		out = union(out, s.a.call(r, args).value)
	}
	return out
}

// dataRef follows a ref into data: the rules it reaches are analysed; it
// returns the shape of its value. A ref above the rules (a package, or a
// path with a variable before the rule) may be any rule below, each read
// whole.
func (a *readAnalyzer) dataRef(ref ast.Ref, s *scope, inArray bool) *valueShape {
	for k := len(ref); k >= 2; k-- {
		prefix := ref[:k]
		if !prefix.IsGround() {
			continue
		}
		rules := a.c.GetRulesExact(prefix)
		if len(rules) == 0 {
			continue
		}
		var out *valueShape
		for _, r := range rules {
			out = union(out, a.rule(r).value)
		}
		for _, seg := range ref[k:] {
			out = s.derefTerm(out, seg, inArray)
		}
		return out
	}
	for _, r := range a.c.GetRules(ref.GroundPrefix()) {
		a.useShape(a.rule(r).value, ctxWhole)
	}
	if len(ref.GroundPrefix()) <= 1 {
		for _, r := range a.c.GetRulesWithPrefix(ast.Ref{ast.DefaultRootDocument}) {
			a.useShape(a.rule(r).value, ctxWhole)
		}
	}
	return nil
}

// visitRule records what a rule reads, given how its variables occur, and
// adds the shape of its value to rr.
func (s *scope) visitRule(r *ast.Rule, rr *ruleReads, followed bool, args []*valueShape) {
	for i, t := range r.Head.Args {
		var arg *valueShape
		if i < len(args) {
			arg = args[i]
		}
		switch v := t.Value.(type) {
		case ast.Var:
			if !s.alias(v) {
				s.a.useShape(arg, ctxWhole)
			}
		case ast.String, ast.Number, ast.Boolean, ast.Null:
			// Matching a scalar: a pruned object or array is still
			// no scalar, and a scalar is kept as it is.
			s.a.useShape(arg, ctxType)
		default:
			s.a.useShape(arg, ctxWhole)
			s.term(t, ctxWhole)
		}
	}
	head := r.Head.Value
	if r.Head.Key != nil && r.Head.Value == nil {
		head = r.Head.Key
	} else if r.Head.Key != nil {
		s.term(r.Head.Key, ctxWhole)
	}
	if head != nil {
		if followed && isFlowTerm(head) {
			s.term(head, ctxBind)
			sh := s.termShape(head)
			if r.Head.RuleKind() == ast.MultiValue && len(r.Head.Args) == 0 {
				if sh != nil {
					sh = &valueShape{elems: sh}
				}
			}
			rr.value = union(rr.value, sh)
		} else {
			s.term(head, ctxWhole)
		}
	}
	for _, t := range r.Head.Ref()[1:] {
		s.term(t, ctxWhole)
	}
	s.body(r.Body)
}

// isFlowTerm holds for the terms whose value a followed rule passes on.
func isFlowTerm(t *ast.Term) bool {
	switch t.Value.(type) {
	case ast.Var, ast.Ref, ast.Object, *ast.Array, *ast.ArrayComprehension, *ast.SetComprehension:
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
		// The binding count found: the left variable's, else the
		// right's. A variable not followed compares what it is bound
		// to, below.
		l, r := ts[1], ts[2]
		if v, ok := l.Value.(ast.Var); ok && isSource(r) {
			if s.alias(v) {
				s.term(r, ctxBind)
				return
			}
		} else if v, ok := r.Value.(ast.Var); ok && isSource(l) && s.alias(v) {
			s.term(l, ctxBind)
			return
		}
	}
	if fn, n := s.function(ts[0]); fn {
		// A function of a policy or a library: its body is followed
		// with the shapes of its arguments; its result is used as the
		// variable it is bound to is, or whole.
		in := ts[1:]
		if len(in) > n {
			in = in[:n]
		}
		if len(e.With) > 0 {
			for _, t := range in {
				s.term(t, ctxWhole)
			}
		} else {
			for _, t := range in {
				s.term(t, ctxBind)
			}
		}
		ret := s.callShape(append([]*ast.Term{ts[0]}, in...), s.inArray > 0)
		if len(ts)-1 > n {
			out := ts[n+1]
			if v, ok := out.Value.(ast.Var); !ok || !s.alias(v) || len(e.With) > 0 || e.Negated {
				s.a.useShape(ret, ctxWhole)
				s.term(out, ctxWhole)
			}
		}
		return
	}
	if len(opRef) > 0 && opRef[0].Equal(ast.DefaultRootDocument) {
		s.a.dataRef(opRef, s, false)
	} else {
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
			sh := s.termShape(args[0])
			if sh == nil && isAliasTerm(args[0]) {
				s.term(args[0], ctxWhole)
			}
			for _, seg := range segs {
				sh = sh.deref(seg)
			}
			s.a.useShape(sh, ctxWhole)
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

// isAliasTerm holds for the terms a followed value may be.
func isAliasTerm(t *ast.Term) bool {
	switch t.Value.(type) {
	case ast.Var, ast.Ref:
		return true
	}
	return false
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
	if ctx == ctxBind {
		// Bound to a followed variable, passed to a function or
		// returned: present; the rest is read where it is used.
		ctx = ctxType
	}
	switch v := t.Value.(type) {
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			s.a.useShape(&valueShape{paths: []readPath{nil}}, ctx)
			return
		}
		if v.Equal(ast.DefaultRootDocument.Value) {
			s.a.dataRef(ast.Ref{t}, s, false)
			return
		}
		if s.alias(v) {
			s.a.useShape(s.varShape(v), ctx)
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
		s.a.useShape(s.termShape(t), ctx)
	case ast.Object:
		v.Foreach(func(k, x *ast.Term) {
			s.term(k, ctxWhole)
			s.term(x, ctxType)
		})
		s.a.useShape(s.termShape(t), ctx)
	case *ast.Array:
		v.Foreach(func(x *ast.Term) { s.term(x, ctxType) })
		s.a.useShape(s.termShape(t), ctx)
	case *ast.ArrayComprehension:
		s.inArray++
		s.term(v.Term, ctxType)
		s.body(v.Body)
		s.inArray--
		s.a.useShape(s.termShape(t), ctx)
	case *ast.SetComprehension:
		s.term(v.Term, ctxType)
		s.body(v.Body)
		s.a.useShape(s.termShape(t), ctx)
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

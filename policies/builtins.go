package policies

import (
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
	"k8s.io/apimachinery/pkg/api/resource"
)

// StandardBuiltins are the Rego functions Tollgate adds to OPA's. They parse
// what Kubernetes and the container runtime parse, with the same Go code, so
// a policy can never read an image reference or a quantity differently from
// the cluster (and they are far cheaper than the same grammar in Rego).
//
//	tollgate.parse_image(ref)    -> {"valid", "error", "registry", "repository", "path", "tag", "digest"}
//	tollgate.parse_quantity(q)   -> number (cores, bytes), undefined if q is not a quantity
//	tollgate.pod_requests(spec)  -> {resource: number}, what the scheduler reserves (see PodRequests)
//
// The engine and `tollgate test` always provide them; `opa test` does not
// know them.
//
// Each call of StandardBuiltins returns functions with their own bounded
// cache of results: the same images and quantities recur in almost every
// request.
func StandardBuiltins() []Builtin {
	return []Builtin{
		{
			Name: "tollgate.parse_image",
			Decl: types.NewFunction(types.Args(types.A), types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))),
			Impl: cached(parseImage),
		},
		{
			Name: "tollgate.parse_quantity",
			Decl: types.NewFunction(types.Args(types.A), types.N),
			Impl: cached(parseQuantity),
		},
		{
			Name: "tollgate.pod_requests",
			Decl: types.NewFunction(types.Args(types.A), types.NewObject(nil, types.NewDynamicProperty(types.S, types.N))),
			Impl: podRequestsBuiltin,
		},
	}
}

// builtinCacheSize bounds each builtin's cache; past it the cache starts
// over, which keeps memory flat whatever the requests hold.
const builtinCacheSize = 4096

// cached memoizes a one-argument builtin on string arguments. Results are
// immutable terms, safe to share between concurrent evaluations.
func cached(f rego.BuiltinDyn) rego.BuiltinDyn {
	var (
		mu    sync.RWMutex
		cache = make(map[string]*ast.Term)
	)
	return func(bctx rego.BuiltinContext, args []*ast.Term) (*ast.Term, error) {
		key, ok := args[0].Value.(ast.String)
		if !ok || len(key) > maxImageRefLength {
			return f(bctx, args)
		}
		mu.RLock()
		t, hit := cache[string(key)]
		mu.RUnlock()
		if hit {
			return t, nil
		}
		t, err := f(bctx, args)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		if len(cache) >= builtinCacheSize {
			clear(cache)
		}
		cache[string(key)] = t
		mu.Unlock()
		return t, nil
	}
}

// maxImageRefLength bounds what parse_image looks at; the reference grammar
// caps names at 255 characters, a tag at 128 and a digest at 135.
const maxImageRefLength = 1024

func parseImage(_ rego.BuiltinContext, args []*ast.Term) (*ast.Term, error) {
	invalid := func(msg string) *ast.Term {
		return ast.ObjectTerm(
			ast.Item(ast.StringTerm("valid"), ast.BooleanTerm(false)),
			ast.Item(ast.StringTerm("error"), ast.StringTerm(msg)),
			ast.Item(ast.StringTerm("registry"), ast.StringTerm("")),
			ast.Item(ast.StringTerm("repository"), ast.StringTerm("")),
			ast.Item(ast.StringTerm("path"), ast.ArrayTerm()),
			ast.Item(ast.StringTerm("tag"), ast.StringTerm("")),
			ast.Item(ast.StringTerm("digest"), ast.StringTerm("")),
		)
	}
	s, ok := args[0].Value.(ast.String)
	if !ok {
		return invalid("image reference is not a string"), nil
	}
	ref := string(s)
	switch {
	case ref == "":
		return invalid("image reference is empty"), nil
	case len(ref) > maxImageRefLength:
		return invalid("image reference is longer than 1024 characters"), nil
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return invalid(err.Error()), nil
	}
	repo := reference.Path(named)
	segs := strings.Split(repo, "/")
	path := make([]*ast.Term, len(segs))
	for i, p := range segs {
		path[i] = ast.StringTerm(p)
	}
	var tag, digest string
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		digest = d.Digest().String()
	}
	return ast.ObjectTerm(
		ast.Item(ast.StringTerm("valid"), ast.BooleanTerm(true)),
		ast.Item(ast.StringTerm("error"), ast.StringTerm("")),
		ast.Item(ast.StringTerm("registry"), ast.StringTerm(reference.Domain(named))),
		ast.Item(ast.StringTerm("repository"), ast.StringTerm(repo)),
		ast.Item(ast.StringTerm("path"), ast.ArrayTerm(path...)),
		ast.Item(ast.StringTerm("tag"), ast.StringTerm(tag)),
		ast.Item(ast.StringTerm("digest"), ast.StringTerm(digest)),
	), nil
}

// parseQuantity reads a Kubernetes quantity with apimachinery's parser. It
// is undefined (not an error) for anything that is not a quantity, so a
// policy decides what an invalid value means.
func parseQuantity(_ rego.BuiltinContext, args []*ast.Term) (*ast.Term, error) {
	var text string
	switch v := args[0].Value.(type) {
	case ast.Number:
		// YAML gives "cpu: 2" as a number; Kubernetes reads it as "2".
		text = string(v)
	case ast.String:
		text = string(v)
	default:
		return nil, nil
	}
	if len(text) > 64 {
		return nil, nil
	}
	q, err := resource.ParseQuantity(text)
	if err != nil {
		return nil, nil //nolint:nilerr // undefined by design
	}
	// AsApproximateFloat64 keeps fractions of a core ("500m" is 0.5).
	return ast.FloatNumberTerm(q.AsApproximateFloat64()), nil
}

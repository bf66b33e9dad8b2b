package policies

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// plan is what the engine needs to evaluate one set of applicable
// policies: the union of what they read, to build their input from, and
// each one's own read set, to key its cached verdict on.
type plan struct {
	// union is nil when some policy's reads cannot be bounded: the whole
	// input is built.
	union *readNode
}

// newPlan merges the read sets of ps.
func newPlan(ps []*policy) *plan {
	u := &readNode{}
	for _, p := range ps {
		if p.reads.root.whole {
			return &plan{}
		}
		u.merge(p.reads.root)
	}
	return &plan{union: u.normalize()}
}

// objectNode is what is read of input.object (or oldObject, key), with
// what is read of input.pod grafted at the pod template's path: the pod
// view is built from the object.
func (pl *plan) objectNode(key string, tmplPath []string, hasPod bool) *readNode {
	if pl.union == nil {
		return &readNode{whole: true}
	}
	n := pl.union.child(key)
	if !hasPod {
		return n
	}
	pod := pl.union.child("pod")
	if pod == nil {
		return n
	}
	out := &readNode{}
	out.merge(n)
	tmpl := make(readPath, len(tmplPath))
	for i, s := range tmplPath {
		tmpl[i] = readSeg{key: s}
	}
	at := out.node(tmpl)
	for _, part := range []string{"metadata", "spec"} {
		if c := pod.child(part); c != nil {
			at.node(readPath{{key: part}}).merge(c)
		}
	}
	return out.normalize()
}

// toValue converts the JSON-shaped x to a Rego value, keeping only what n
// reads (see readNode). nil n keeps everything.
func toValue(x any, n *readNode) (ast.Value, error) {
	if n == nil || n.whole {
		return ast.InterfaceToValue(x)
	}
	switch x := x.(type) {
	case map[string]any:
		if n.any == nil {
			obj := ast.NewObjectWithCapacity(len(n.kids))
			for k, c := range n.kids {
				v, ok := x[k]
				if !ok {
					continue
				}
				val, err := toValue(v, c)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				obj.Insert(ast.InternedTerm(k), ast.NewTerm(val))
			}
			return obj, nil
		}
		obj := ast.NewObjectWithCapacity(len(x))
		for k, v := range x {
			val, err := toValue(v, n.child(k))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			obj.Insert(ast.InternedTerm(k), ast.NewTerm(val))
		}
		return obj, nil
	case []any:
		if n.any == nil {
			return ast.NewArray(), nil
		}
		terms := make([]*ast.Term, len(x))
		for i, v := range x {
			val, err := toValue(v, n.any)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			terms[i] = ast.NewTerm(val)
		}
		return ast.NewArray(terms...), nil
	default:
		return ast.InterfaceToValue(x)
	}
}

// hashers reuses the sha256 states and scratch buffers verdict keys are
// computed with.
var hashers = sync.Pool{New: func() any { return &keyHasher{h: sha256.New()} }}

type keyHasher struct {
	h    hash.Hash
	buf  []byte
	memo digests
}

// digests memoizes, for one input, the digest of each object or array read
// whole: most policies read the same containers.
type digests map[ast.Value][32]byte

// verdictKey is the cache key of a policy's verdict on input: its id and
// the values at exactly the paths it reads (input.config is left out: it is
// fixed for the engine's life and the cache lives in the engine).
func verdictKey(id string, reads *readNode, input ast.Value, memo digests) [32]byte {
	kh := hashers.Get().(*keyHasher)
	defer hashers.Put(kh)
	kh.reset(memo)
	kh.str(id)
	kh.value(input, reads, true)
	return kh.sum()
}

func (kh *keyHasher) reset(memo digests) {
	kh.h.Reset()
	kh.buf = kh.buf[:0]
	kh.memo = memo
}

func (kh *keyHasher) sum() [32]byte {
	kh.flush()
	var out [32]byte
	kh.h.Sum(out[:0])
	return out
}

// whole writes a composite value read whole as its own digest.
func (kh *keyHasher) whole(v ast.Value) bool {
	switch v.(type) {
	case ast.Object, *ast.Array:
	default:
		return false
	}
	d, ok := kh.memo[v]
	if !ok {
		sub := hashers.Get().(*keyHasher)
		sub.reset(kh.memo)
		sub.value(v, wholeNode, false)
		d = sub.sum()
		hashers.Put(sub)
		kh.memo[v] = d
	}
	kh.tag('h')
	kh.buf = append(kh.buf, d[:]...)
	return true
}

// wholeNode reads everything.
var wholeNode = &readNode{whole: true}

func (kh *keyHasher) flush() {
	kh.h.Write(kh.buf)
	kh.buf = kh.buf[:0]
}

func (kh *keyHasher) tag(b byte) {
	kh.buf = append(kh.buf, b)
	if len(kh.buf) > 4096 {
		kh.flush()
	}
}

func (kh *keyHasher) str(s string) {
	kh.buf = binary.AppendUvarint(kh.buf, uint64(len(s)))
	kh.buf = append(kh.buf, s...)
	if len(kh.buf) > 4096 {
		kh.flush()
	}
}

// value writes the canonical encoding of v as n reads it: a tag per kind,
// lengths before contents, object members in key order, so different read
// values never encode the same.
func (kh *keyHasher) value(v ast.Value, n *readNode, root bool) {
	if n.whole && n != wholeNode && kh.whole(v) {
		return
	}
	switch v := v.(type) {
	case ast.Null:
		kh.tag('n')
	case ast.Boolean:
		if v {
			kh.tag('t')
		} else {
			kh.tag('f')
		}
	case ast.Number:
		kh.tag('d')
		kh.str(string(v))
	case ast.String:
		kh.tag('s')
		kh.str(string(v))
	case *ast.Array:
		kh.tag('a')
		if !n.whole && n.any == nil {
			return
		}
		kh.buf = binary.AppendUvarint(kh.buf, uint64(v.Len()))
		c := n
		if !n.whole {
			c = n.any
		}
		for i := range v.Len() {
			kh.value(v.Elem(i).Value, c, false)
		}
	case ast.Object:
		kh.tag('o')
		// Keys come sorted.
		for _, k := range v.Keys() {
			c := n
			if !n.whole {
				ks, _ := k.Value.(ast.String)
				if c = n.child(string(ks)); c == nil {
					continue
				}
				if root && ks == "config" {
					continue
				}
			}
			kh.tag('k')
			kh.value(k.Value, wholeNode, false)
			kh.value(v.Get(k).Value, c, false)
		}
		kh.tag('e')
	default:
		// Sets and anything else: their canonical text.
		kh.tag('x')
		kh.str(v.String())
	}
}

// jsonSize estimates the bytes a raw Rego result holds, for the cache's
// byte budget.
func jsonSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return int64(len(v)) + 16
	case json.Number:
		return int64(len(v)) + 16
	case []any:
		n := int64(24)
		for _, x := range v {
			n += jsonSize(x) + 16
		}
		return n
	case map[string]any:
		n := int64(48)
		for k, x := range v {
			n += int64(len(k)) + 16 + jsonSize(x) + 16
		}
		return n
	default:
		return 16
	}
}

// planKey names a set of policies.
func planKey(ps []*policy) string {
	var key strings.Builder
	for _, p := range ps {
		key.WriteString(p.meta.ID)
		key.WriteByte(0)
	}
	return key.String()
}

package policies

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

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
	keys []string
	memo digests
}

// digests memoizes, for one input, the digest of each object or array read
// whole, by identity: most policies read the same containers.
type digests map[identity][32]byte

type identity struct {
	p unsafe.Pointer
	n int
}

// goInput is the input as policies see it (see inputValue), in the JSON
// values it is built from, for verdict keys: a policy whose verdict is
// cached costs no conversion for Rego. input.config is left out: it is
// fixed for the engine's life, and so is the cache.
func goInput(in *Input, tmplPath []string, hasPod bool, profile map[string]any) map[string]any {
	root := map[string]any{
		"kind":        map[string]any{"group": in.Kind.Group, "version": in.Kind.Version, "kind": in.Kind.Kind},
		"operation":   in.Operation,
		"dryRun":      in.DryRun,
		"subResource": in.SubResource,
		"source":      in.Source,
	}
	var source map[string]any
	for _, f := range []struct {
		key string
		val map[string]any
	}{{"object", in.Object}, {"oldObject", in.OldObject}, {"namespace", in.Namespace}} {
		if len(f.val) == 0 {
			continue
		}
		v := withoutManagedFields(f.val)
		root[f.key] = v
		if source == nil && f.key != "namespace" {
			source = v
		}
	}
	if in.ImageScans != nil {
		root["imageScans"] = in.ImageScans
	}
	if in.Inventory != nil {
		// Only a policy that iterates input's members reaches it here: one
		// that names it is not cached where there is an inventory.
		root["inventory"] = in.Inventory.Value()
	}
	if profile != nil {
		root["profile"] = profile
	}
	if c := in.Controller; c != nil {
		root["controller"] = map[string]any{"apiVersion": c.APIVersion, "kind": c.Kind, "name": c.Name, "uid": c.UID}
	}
	if u := in.UserInfo; u != nil {
		groups := make([]any, len(u.Groups))
		for i, g := range u.Groups {
			groups[i] = g
		}
		extra := make(map[string]any, len(u.Extra))
		for k, vs := range u.Extra {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			extra[k] = list
		}
		root["userInfo"] = map[string]any{"username": u.Username, "uid": u.UID, "groups": groups, "extra": extra}
	}
	if hasPod && source != nil {
		var tmpl any = source
		for _, s := range tmplPath {
			m, _ := tmpl.(map[string]any)
			tmpl = m[s]
		}
		if t, ok := tmpl.(map[string]any); ok {
			meta, ok := t["metadata"].(map[string]any)
			if !ok {
				meta = map[string]any{}
			}
			spec, ok := t["spec"].(map[string]any)
			if !ok {
				spec = map[string]any{}
			}
			root["pod"] = map[string]any{"metadata": meta, "spec": spec}
		}
	}
	return root
}

// verdictKey is the cache key of a policy's verdict on input (goInput): its
// id and the values at exactly the paths it reads.
func verdictKey(id string, reads *readNode, input map[string]any, memo digests) [32]byte {
	kh := hashers.Get().(*keyHasher)
	defer hashers.Put(kh)
	kh.reset(memo)
	kh.str(id)
	kh.value(input, reads)
	return kh.sum()
}

func (kh *keyHasher) reset(memo digests) {
	kh.h.Reset()
	kh.buf = kh.buf[:0]
	kh.keys = kh.keys[:0]
	kh.memo = memo
}

func (kh *keyHasher) sum() [32]byte {
	kh.flush()
	var out [32]byte
	kh.h.Sum(out[:0])
	return out
}

// whole writes a composite value read whole as its own digest.
func (kh *keyHasher) whole(x any) bool {
	var id identity
	switch v := x.(type) {
	case map[string]any:
		if len(v) == 0 {
			return false
		}
		id = identity{p: reflect.ValueOf(v).UnsafePointer(), n: -1}
	case []any:
		if len(v) == 0 {
			return false
		}
		id = identity{p: unsafe.Pointer(unsafe.SliceData(v)), n: len(v)}
	default:
		return false
	}
	d, ok := kh.memo[id]
	if !ok {
		sub := hashers.Get().(*keyHasher)
		sub.reset(kh.memo)
		sub.value(x, wholeNode)
		d = sub.sum()
		hashers.Put(sub)
		kh.memo[id] = d
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

// value writes the canonical encoding of x as n reads it (see toValue): a
// tag per kind, lengths before contents, object members in key order, so
// different read values never encode the same.
func (kh *keyHasher) value(x any, n *readNode) {
	if n.whole && n != wholeNode && kh.whole(x) {
		return
	}
	switch v := x.(type) {
	case nil:
		kh.tag('n')
	case bool:
		if v {
			kh.tag('t')
		} else {
			kh.tag('f')
		}
	case string:
		kh.tag('s')
		kh.str(v)
	case json.Number:
		kh.tag('d')
		kh.str(string(v))
	case float64:
		kh.tag('g')
		kh.str(strconv.FormatFloat(v, 'g', -1, 64))
	case []any:
		kh.tag('a')
		if !n.whole && n.any == nil {
			return
		}
		kh.buf = binary.AppendUvarint(kh.buf, uint64(len(v)))
		c := n
		if !n.whole {
			c = n.any
		}
		for _, e := range v {
			kh.value(e, c)
		}
	case map[string]any:
		kh.tag('o')
		start := len(kh.keys)
		if n.whole || n.any != nil {
			for k := range v {
				kh.keys = append(kh.keys, k)
			}
		} else {
			for k := range n.kids {
				if _, ok := v[k]; ok {
					kh.keys = append(kh.keys, k)
				}
			}
		}
		mine := kh.keys[start:]
		slices.Sort(mine)
		for _, k := range mine {
			kh.tag('k')
			kh.str(k)
			kh.value(v[k], n.child(k))
		}
		kh.keys = kh.keys[:start]
		kh.tag('e')
	default:
		// Anything else a caller put in an object: its type and its
		// printed value (fmt prints maps in key order).
		kh.tag('x')
		kh.str(fmt.Sprintf("%T %v", v, v))
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

package output

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
)

// Mutation is what admission would change in one input object before it is
// judged: the mutating webhook's JSON patch, so a pull request shows what
// the platform injects instead of asking developers to write it.
type Mutation struct {
	// File and Line locate the object's document.
	File string `json:"file"`
	Line int    `json:"line"`
	// APIVersion, Kind, Namespace and Name identify the object.
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Patch is the JSON patch (RFC 6902) the webhook would return.
	Patch []policies.PatchOperation `json:"patch"`
}

func sortedMutations(ms []Mutation) []Mutation {
	out := slices.Clone(ms)
	slices.SortStableFunc(out, func(a, b Mutation) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// diffLines renders a patch as a person reads a diff: one line per
// operation, "+ path: value" for an add, "~ path: value" for a replace,
// "- path" for a remove, with paths written as kubectl writes them.
func diffLines(patch []policies.PatchOperation) []string {
	out := make([]string, 0, len(patch))
	for _, op := range patch {
		path := pointerPath(op.Path)
		switch op.Op {
		case "remove":
			out = append(out, "- "+path)
			continue
		case "replace":
			path = "~ " + path
		default:
			path = "+ " + path
		}
		v, err := json.Marshal(op.Value)
		if err != nil {
			v = []byte("?")
		}
		out = append(out, path+": "+string(v))
	}
	return out
}

// pointerPath turns a JSON pointer (/spec/template/spec/containers/0) into
// a kubectl-style path (spec.template.spec.containers[0]).
func pointerPath(ptr string) string {
	if ptr == "" || ptr == "/" {
		return "."
	}
	var segs []any
	for _, s := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		s = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && strconv.Itoa(n) == s {
			segs = append(segs, n)
		} else {
			segs = append(segs, s)
		}
	}
	return policies.FormatPath(segs)
}

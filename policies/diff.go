package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// Diff is the JSON patch from one object to another, in a stable order,
// nil when both encode the same. The evaluators that mutate by making a
// new object (the review core's chain of mutations, MutatingAdmission-
// Policies, Kyverno's policies) answer with it.
func Diff(from, to map[string]any) ([]PatchOperation, error) {
	a, err := json.Marshal(from)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(to)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(a, b) {
		return nil, nil
	}
	patch, err := jsonpatch.CreatePatch(a, b)
	if err != nil {
		return nil, fmt.Errorf("comparing the mutated object: %w", err)
	}
	if len(patch) == 0 {
		return nil, nil
	}
	// CreatePatch walks maps in random order: sort for a stable output.
	// Keys of one object commute; ops on one array keep their order.
	slices.SortStableFunc(patch, func(a, b jsonpatch.Operation) int {
		ap, ak := splitPointer(a.Path)
		bp, bk := splitPointer(b.Path)
		if c := strings.Compare(ap, bp); c != 0 {
			return c
		}
		if isIndex(ak) && isIndex(bk) {
			return 0
		}
		return strings.Compare(ak, bk)
	})
	out := make([]PatchOperation, len(patch))
	for i, op := range patch {
		out[i] = PatchOperation{Op: op.Operation, Path: op.Path, Value: op.Value}
	}
	return out, nil
}

func splitPointer(p string) (parent, last string) {
	i := strings.LastIndexByte(p, '/')
	return p[:i+1], p[i+1:]
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil || s == "-"
}

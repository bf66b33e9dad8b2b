// Package manifest reads Kubernetes manifests (files, directories and
// standard input holding YAML or JSON, multi-document streams, List objects,
// `helm template` and `kustomize build` output) into Documents that remember
// where each object came from.
//
// `tollgate check` and the compliance report evaluate policies on what the
// cluster would receive, so values are decoded the way kubectl decodes them
// (sigs.k8s.io/yaml, YAML 1.1 booleans, numbers kept as json.Number), while a
// separate gopkg.in/yaml.v3 node tree keeps line numbers so that a finding can
// point at file:line. Malformed input is reported as *Error values naming the
// file and line; nothing is skipped silently.
package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Defaults used when the corresponding Options field is zero. They are
// exported so that the CLI can show them in its help text.
const (
	// DefaultMaxFileBytes bounds the memory one file may take: manifests are
	// read whole, and a gate must not be knocked over by a huge input.
	DefaultMaxFileBytes int64 = 64 << 20
	// DefaultMaxDepth is far deeper than real objects (CRD schemas that embed
	// a pod template reach about 30 levels) and shallow enough that walking
	// hostile input stays cheap.
	DefaultMaxDepth = 100
)

// maxErrorsPerFile stops reading a file after this many errors, so that a
// file of millions of broken documents cannot exhaust memory with errors.
const maxErrorsPerFile = 100

// Document is one Kubernetes object read from a file, with where it came
// from, so that policy results can be reported at file:line.
type Document struct {
	// File is the path as the user gave it (a file found in a directory is
	// the directory path joined with its name); standard input is "<stdin>".
	File string
	// Line is the 1-based line in File where the object starts: its first
	// field, not a leading comment or separator. For an item of a List it is
	// the line of the item.
	Line int
	// Index is the 0-based position of the YAML document (or JSON value) in
	// File, counting empty documents that start with "---" as YAML does.
	// Items of a List share the Index of the List.
	Index int
	// Object is the decoded object as kubectl would send it: a JSON-compatible
	// value made of map[string]any, []any, string, bool, json.Number and nil.
	Object map[string]any

	// node is the object's yaml.v3 node tree; only line numbers are read
	// from it. It may be nil, in which case LineOf returns Line.
	node *yaml.Node
	// lines turns lines of node into lines of File, because each YAML
	// document is parsed on its own and YAML counts line breaks its own way.
	lines lineMap
}

// APIVersion returns the object's apiVersion, such as "apps/v1".
func (d *Document) APIVersion() string {
	s, _ := d.Object["apiVersion"].(string)
	return s
}

// Kind returns the object's kind, such as "Deployment".
func (d *Document) Kind() string {
	s, _ := d.Object["kind"].(string)
	return s
}

// Name returns metadata.name, or "" when the object has none (for example
// when it uses metadata.generateName).
func (d *Document) Name() string {
	return d.metadata("name")
}

// Namespace returns metadata.namespace, or "" when the manifest leaves the
// namespace to the client.
func (d *Document) Namespace() string {
	return d.metadata("namespace")
}

func (d *Document) metadata(field string) string {
	md, _ := d.Object["metadata"].(map[string]any)
	s, _ := md[field].(string)
	return s
}

// LineOf returns the 1-based line in File of the field at path, so that a
// policy violation with a path can be shown where the user must fix it.
// Elements of path are map keys (string) and list indexes (int, int64,
// float64 or json.Number holding an integer, as paths decoded from JSON or
// Rego may hold). For a map key the line is that of the key. When the field
// does not exist, LineOf returns the line of its deepest existing ancestor,
// and d.Line for an empty path or a Document without position data.
func (d *Document) LineOf(path []any) int {
	line := d.Line
	n := d.node
	for _, step := range path {
		n = resolveAlias(n)
		if n == nil {
			return line
		}
		switch n.Kind {
		case yaml.MappingNode:
			key, ok := step.(string)
			if !ok {
				return line
			}
			k, v := lookupKey(n, key)
			if k == nil {
				return line
			}
			line = d.abs(k.Line)
			n = v
		case yaml.SequenceNode:
			i, ok := toIndex(step)
			if !ok || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = d.abs(n.Line)
		default:
			return line
		}
	}
	return line
}

// abs turns a line of the document's node tree into a line of File.
func (d *Document) abs(nodeLine int) int {
	return d.lines.abs(nodeLine)
}

// resolveAlias follows YAML aliases to the node they name, so that a path
// through `*anchor` finds the fields written at the anchor.
func resolveAlias(n *yaml.Node) *yaml.Node {
	// yaml.v3 rejects self-referencing anchors, but bound the walk anyway.
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// lookupKey returns the key and value nodes of key in mapping m. The last
// occurrence wins, as in the decoded value.
func lookupKey(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := len(m.Content) - 2; i >= 0; i -= 2 {
		if yamlKey(m.Content[i]) == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// yamlKey returns the JSON object key sigs.k8s.io/yaml produces for a YAML
// mapping key. yaml.v3 resolves plain scalars by YAML 1.2, but kubectl's
// decoder uses YAML 1.1, where an unquoted `yes`, `on` or `n` key is a
// boolean and becomes "true" or "false".
func yamlKey(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || n.Style != 0 {
		return n.Value
	}
	switch n.Value {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON":
		return "true"
	case "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF":
		return "false"
	}
	return n.Value
}

// toIndex reads a list index from a path element.
func toIndex(step any) (int, bool) {
	switch v := step.(type) {
	case int:
		return v, true
	case int64:
		if v < math.MinInt || v > math.MaxInt {
			return 0, false
		}
		return int(v), true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, false
		}
		return int(v), true
	case json.Number:
		i, err := strconv.Atoi(string(v))
		return i, err == nil
	}
	return 0, false
}

// Error is malformed input: which file, which line, what is wrong. Read and
// Load return every Error they find joined with errors.Join; use errors.As
// or unwrap the join to list them.
type Error struct {
	// File is the path as shown in Document.File.
	File string
	// Line is the 1-based line of the problem, or 0 when it concerns the
	// whole file (for example a file over the size limit).
	Line int
	// Msg says what is wrong and, where it helps, how to fix it.
	Msg string
}

// Error formats the problem as "file:line: msg", the form editors and CI
// annotations recognise.
func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Options bounds and filters what Read and Load accept. The zero value is
// ready to use.
type Options struct {
	// MaxFileBytes is the largest file (or standard input) accepted, in
	// bytes; a bigger one is an Error. Zero means DefaultMaxFileBytes.
	MaxFileBytes int64
	// MaxDepth is the deepest nesting of maps and lists accepted in an
	// object; deeper input is an Error. Zero means DefaultMaxDepth.
	MaxDepth int
	// Ignore lists path.Match patterns of files and directories to skip
	// while walking a directory, such as "values*.yaml" or "charts". A
	// pattern is matched against the base name, against the slash-separated
	// path as shown in Document.File and against the path relative to the
	// directory given by the user. Paths given explicitly are never ignored.
	Ignore []string
}

// Validate reports options that cannot work, so that a typo in a flag or a
// config file fails before any file is read.
func (o Options) Validate() error {
	if o.MaxFileBytes < 0 {
		return fmt.Errorf("manifest options: MaxFileBytes must not be negative, got %d", o.MaxFileBytes)
	}
	if o.MaxDepth < 0 {
		return fmt.Errorf("manifest options: MaxDepth must not be negative, got %d", o.MaxDepth)
	}
	for _, p := range o.Ignore {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("manifest options: ignore pattern %q: %w", p, err)
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxFileBytes == 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	return o
}

// formatBytes writes a size the way a user would write the limit.
func formatBytes(n int64) string {
	const mib = 1 << 20
	if n >= mib && n%mib == 0 {
		return strconv.FormatInt(n/mib, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

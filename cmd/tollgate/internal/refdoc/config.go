package refdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// configSchema is the configuration file's JSON schema, which LoadConfig
// validates every file and TollgateConfig against.
const configSchema = "policies/config.schema.json"

// schemaKeywords are the JSON schema keywords configFields renders (or
// that say nothing about a field); a schema using another fails, so the
// page never leaves a constraint out unsaid.
var schemaKeywords = []string{"$defs", "$id", "$ref", "$schema", "additionalProperties", "const", "default", "description",
	"enum", "exclusiveMaximum", "exclusiveMinimum", "format", "items", "maxItems", "maxLength", "maxProperties", "maximum",
	"minItems", "minLength", "minProperties", "minimum", "pattern", "properties", "required", "title", "type", "uniqueItems"}

// Config renders config.md: every field of the configuration file, from
// its JSON schema.
func Config(repo fs.FS) ([]byte, error) {
	data, err := fs.ReadFile(repo, configSchema)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("%s: %w", configSchema, err)
	}
	w := schemaWalker{defs: asMap(root["$defs"])}
	var fields []field
	if err := w.properties("", root, &fields); err != nil {
		return nil, fmt.Errorf("%s: %w", configSchema, err)
	}
	var b strings.Builder
	b.WriteString(header("Configuration file",
		"Every field of Tollgate's configuration (the file given with --config, the chart's `config` value, "+
			"and a TollgateConfig's spec), from its JSON schema, [policies/config.schema.json](../../policies/config.schema.json), "+
			"which every configuration is validated against. A path names an array's items with `[]` and a map's values with `<key>`."))
	if d, _ := root["description"].(string); d != "" {
		b.WriteString(d + "\n\n")
	}
	writeFields(&b, fields)
	return []byte(b.String()), nil
}

// schemaWalker walks a JSON schema, resolving $refs to its $defs.
type schemaWalker struct {
	defs map[string]any
	// refs are the $defs being walked, so a recursive one is named rather
	// than walked forever.
	refs []string
}

// properties appends the fields of an object schema's properties under
// prefix.
func (w *schemaWalker) properties(prefix string, s map[string]any, out *[]field) error {
	props := asMap(s["properties"])
	var required []string
	for _, r := range asSlice(s["required"]) {
		if r, ok := r.(string); ok {
			required = append(required, r)
		}
	}
	for _, name := range sortedKeys(props) {
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if err := w.field(p, asMap(props[name]), slices.Contains(required, name), true, out); err != nil {
			return err
		}
	}
	return nil
}

// field appends the field at p and every field under it. own is false for
// an array's items or a map's values, which get a row of their own only
// when they say more than their parent's type.
func (w *schemaWalker) field(p string, s map[string]any, required, own bool, out *[]field) error {
	s, pop, err := w.resolve(p, s)
	if err != nil {
		return err
	}
	defer pop()
	for k := range s {
		if !slices.Contains(schemaKeywords, k) {
			return fmt.Errorf("%s: the keyword %s, which this page does not render yet", p, k)
		}
	}
	f := field{path: p, typ: w.typ(s), required: required, constraints: schemaConstraints(s)}
	f.description, _ = s["description"].(string)
	items, values := asMap(s["items"]), asMap(s["additionalProperties"])
	if own || f.description != "" || len(f.constraints) > 0 {
		*out = append(*out, f)
	}
	if err := w.properties(p, s, out); err != nil {
		return err
	}
	if items != nil {
		if err := w.field(p+"[]", items, false, false, out); err != nil {
			return err
		}
	}
	if values != nil {
		if err := w.field(p+".<key>", values, false, false, out); err != nil {
			return err
		}
	}
	return nil
}

// resolve follows s's $ref, if any; pop ends the walk of the $def.
func (w *schemaWalker) resolve(p string, s map[string]any) (map[string]any, func(), error) {
	ref, ok := s["$ref"].(string)
	if !ok {
		return s, func() {}, nil
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok || w.defs[name] == nil {
		return nil, nil, fmt.Errorf("%s: $ref %s is not one of the schema's $defs", p, ref)
	}
	if slices.Contains(w.refs, name) {
		return nil, nil, fmt.Errorf("%s: $ref %s is recursive, which this page does not render yet", p, ref)
	}
	if len(s) > 1 {
		return nil, nil, fmt.Errorf("%s: keywords beside $ref, which this page does not render yet", p)
	}
	w.refs = append(w.refs, name)
	return asMap(w.defs[name]), func() { w.refs = w.refs[:len(w.refs)-1] }, nil
}

// typ says a schema's type the way Go would: []string, map[string]object.
func (w *schemaWalker) typ(s map[string]any) string {
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, v := range t {
			if v, ok := v.(string); ok {
				types = append(types, v)
			}
		}
	}
	if len(types) == 0 {
		switch {
		case s["const"] != nil:
			return jsonType(s["const"])
		case s["enum"] != nil:
			var ts []string
			for _, v := range asSlice(s["enum"]) {
				if t := jsonType(v); !slices.Contains(ts, t) {
					ts = append(ts, t)
				}
			}
			return strings.Join(ts, " or ")
		}
		return "any"
	}
	for i, t := range types {
		switch {
		case t == "array" && s["items"] != nil:
			items, pop, err := w.resolve("", asMap(s["items"]))
			if err == nil {
				types[i] = "[]" + grouped(w.typ(items))
				pop()
			}
		case t == "object" && asMap(s["additionalProperties"]) != nil && s["properties"] == nil:
			values, pop, err := w.resolve("", asMap(s["additionalProperties"]))
			if err == nil {
				types[i] = "map[string]" + grouped(w.typ(values))
				pop()
			}
		case s["format"] != nil:
			types[i] = fmt.Sprintf("%s (%v)", t, s["format"])
		}
	}
	return strings.Join(types, " or ")
}

// grouped parenthesizes a choice of types inside another: []string, but
// [](string or number).
func grouped(t string) string {
	if strings.Contains(t, " or ") {
		return "(" + t + ")"
	}
	return t
}

// schemaConstraints lists what the schema demands of a value beyond its
// type.
func schemaConstraints(s map[string]any) []string {
	var out []string
	js := func(v any) string {
		b, _ := json.Marshal(v) // decoded from JSON: encodes
		return code(string(b))
	}
	if v, ok := s["const"]; ok {
		out = append(out, "Always "+js(v)+".")
	}
	if vs := asSlice(s["enum"]); len(vs) > 0 {
		quoted := make([]string, len(vs))
		for i, v := range vs {
			quoted[i] = js(v)
		}
		out = append(out, "One of "+strings.Join(quoted, ", ")+".")
	}
	if v, ok := s["default"]; ok {
		out = append(out, "Default: "+js(v)+".")
	}
	if v, ok := s["pattern"].(string); ok {
		out = append(out, "Pattern: "+code(v)+".")
	}
	for _, k := range []struct{ key, name string }{
		{"minimum", "Minimum"}, {"exclusiveMinimum", "Above"}, {"maximum", "Maximum"}, {"exclusiveMaximum", "Below"},
		{"minLength", "Min length"}, {"maxLength", "Max length"}, {"minItems", "Min items"}, {"maxItems", "Max items"},
		{"minProperties", "Min properties"}, {"maxProperties", "Max properties"},
	} {
		if v, ok := s[k.key]; ok {
			out = append(out, fmt.Sprintf("%s: %v.", k.name, v))
		}
	}
	if v, _ := s["uniqueItems"].(bool); v {
		out = append(out, "Items unique.")
	}
	if v, ok := s["additionalProperties"].(bool); ok && !v && s["properties"] == nil {
		out = append(out, "No fields.")
	}
	return out
}

// jsonType is the JSON schema type of a decoded value.
func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case []any:
		return "array"
	}
	return "object"
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

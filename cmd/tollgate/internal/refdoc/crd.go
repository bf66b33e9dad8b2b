package refdoc

import (
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// crdGlob matches Tollgate's own CRDs (controller-gen writes them from
// policies/api); the chart's Gatekeeper and Kyverno CRDs are theirs.
const crdGlob = "charts/tollgate/crds/tollgate.dev_*.yaml"

// CRDs renders crds.md: every field of every served version of
// Tollgate's CRDs, read from their openAPIV3Schema.
func CRDs(repo fs.FS) ([]byte, error) {
	files, err := fs.Glob(repo, crdGlob)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs match %s", crdGlob)
	}
	var crds []apiextv1.CustomResourceDefinition
	for _, f := range files {
		data, err := fs.ReadFile(repo, f)
		if err != nil {
			return nil, err
		}
		var crd apiextv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(data, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		crds = append(crds, crd)
	}
	slices.SortFunc(crds, func(a, b apiextv1.CustomResourceDefinition) int {
		return strings.Compare(a.Spec.Names.Kind, b.Spec.Names.Kind)
	})

	var b strings.Builder
	b.WriteString(header("Custom resources",
		"Every field of Tollgate's CustomResourceDefinitions, from their OpenAPI schemas in "+
			"[charts/tollgate/crds](../../charts/tollgate/crds) (written by controller-gen from the Go types "+
			"in policies/api: `make generate`). A path names an array's items with `[]` and a map's values with `<key>`."))
	b.WriteString("| Kind | Group | Versions | Scope | Short names |\n|---|---|---|---|---|\n")
	for _, crd := range crds {
		var versions []string
		for _, v := range crd.Spec.Versions {
			if v.Served {
				versions = append(versions, v.Name)
			}
		}
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s | %s |\n", crd.Spec.Names.Kind, strings.ToLower(crd.Spec.Names.Kind),
			crd.Spec.Group, strings.Join(versions, ", "), crd.Spec.Scope, strings.Join(crd.Spec.Names.ShortNames, ", "))
	}
	for _, crd := range crds {
		fmt.Fprintf(&b, "\n## %s\n\n", crd.Spec.Names.Kind)
		fmt.Fprintf(&b, "`%s`, %s", crd.Name, strings.ToLower(string(crd.Spec.Scope)))
		if len(crd.Spec.Names.Categories) > 0 {
			fmt.Fprintf(&b, ", in the categories %s", strings.Join(crd.Spec.Names.Categories, ", "))
		}
		b.WriteString(".\n")
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				return nil, fmt.Errorf("%s %s: no schema", crd.Name, v.Name)
			}
			s := v.Schema.OpenAPIV3Schema
			fmt.Fprintf(&b, "\n### %s/%s\n\n", crd.Spec.Group, v.Name)
			if d := strings.TrimSpace(s.Description); d != "" {
				b.WriteString(oneParagraphPerLine(d) + "\n\n")
			}
			var fields []field
			for _, name := range sortedKeys(s.Properties) {
				if name == "apiVersion" || name == "kind" || name == "metadata" {
					continue // the same in every object
				}
				prop := s.Properties[name]
				if err := crdFields(name, &prop, slices.Contains(s.Required, name), &fields); err != nil {
					return nil, fmt.Errorf("%s %s: %w", crd.Name, v.Name, err)
				}
			}
			writeFields(&b, fields)
		}
	}
	return []byte(b.String()), nil
}

// crdFields appends the field at p and every field under it.
func crdFields(p string, s *apiextv1.JSONSchemaProps, required bool, out *[]field) error {
	if len(s.OneOf)+len(s.AllOf) > 0 || s.Not != nil || (len(s.AnyOf) > 0 && !s.XIntOrString) {
		return fmt.Errorf("%s: oneOf, anyOf, allOf or not, which this page does not render yet", p)
	}
	f := field{path: p, typ: crdType(s), required: required, description: s.Description, constraints: crdConstraints(s)}
	*out = append(*out, f)
	for _, name := range sortedKeys(s.Properties) {
		prop := s.Properties[name]
		if err := crdFields(p+"."+name, &prop, slices.Contains(s.Required, name), out); err != nil {
			return err
		}
	}
	if s.Items != nil {
		if s.Items.Schema == nil {
			return fmt.Errorf("%s: items as a list of schemas, which this page does not render", p)
		}
		if err := crdChildren(p+"[]", s.Items.Schema, out); err != nil {
			return err
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		if err := crdChildren(p+".<key>", s.AdditionalProperties.Schema, out); err != nil {
			return err
		}
	}
	return nil
}

// crdChildren appends the fields of an array's items or a map's values:
// their own row only when they are objects with fields (a []string is
// said in its parent's type).
func crdChildren(p string, s *apiextv1.JSONSchemaProps, out *[]field) error {
	if len(s.Properties) == 0 && (s.Items == nil || s.Items.Schema == nil) && (s.AdditionalProperties == nil || s.AdditionalProperties.Schema == nil) {
		if s.Description == "" && len(crdConstraints(s)) == 0 {
			return nil
		}
		*out = append(*out, field{path: p, typ: crdType(s), description: s.Description, constraints: crdConstraints(s)})
		return nil
	}
	for _, name := range sortedKeys(s.Properties) {
		prop := s.Properties[name]
		if err := crdFields(p+"."+name, &prop, slices.Contains(s.Required, name), out); err != nil {
			return err
		}
	}
	if s.Items != nil && s.Items.Schema != nil {
		if err := crdChildren(p+"[]", s.Items.Schema, out); err != nil {
			return err
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		if err := crdChildren(p+".<key>", s.AdditionalProperties.Schema, out); err != nil {
			return err
		}
	}
	return nil
}

// crdType says a schema's type the way Go would: []string,
// map[string]object, string (date-time).
func crdType(s *apiextv1.JSONSchemaProps) string {
	switch {
	case s.XIntOrString:
		return "integer or string"
	case s.Type == "array" && s.Items != nil && s.Items.Schema != nil:
		return "[]" + grouped(crdType(s.Items.Schema))
	case s.Type == "object" && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
		return "map[string]" + grouped(crdType(s.AdditionalProperties.Schema))
	case s.Type == "object" && s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields && len(s.Properties) == 0:
		return "object (any fields)"
	case s.Format != "":
		return s.Type + " (" + s.Format + ")"
	case s.Type == "":
		if s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields {
			return "any"
		}
	}
	return s.Type
}

// crdConstraints lists what the schema demands of a value beyond its type.
func crdConstraints(s *apiextv1.JSONSchemaProps) []string {
	var out []string
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = code(string(e.Raw))
		}
		out = append(out, "One of "+strings.Join(vals, ", ")+".")
	}
	if s.Default != nil {
		out = append(out, "Default: "+code(string(s.Default.Raw))+".")
	}
	if s.Pattern != "" {
		out = append(out, "Pattern: "+code(s.Pattern)+".")
	}
	bound := func(name string, v *float64, exclusive bool) {
		if v == nil {
			return
		}
		if exclusive {
			name += " (exclusive)"
		}
		out = append(out, name+": "+strconv.FormatFloat(*v, 'g', -1, 64)+".")
	}
	bound("Minimum", s.Minimum, s.ExclusiveMinimum)
	bound("Maximum", s.Maximum, s.ExclusiveMaximum)
	count := func(name string, v *int64) {
		if v != nil {
			out = append(out, name+": "+strconv.FormatInt(*v, 10)+".")
		}
	}
	count("Min length", s.MinLength)
	count("Max length", s.MaxLength)
	count("Min items", s.MinItems)
	count("Max items", s.MaxItems)
	count("Min properties", s.MinProperties)
	count("Max properties", s.MaxProperties)
	if s.UniqueItems {
		out = append(out, "Items unique.")
	}
	if s.XListType != nil && *s.XListType == "map" {
		out = append(out, "A list keyed by "+strings.Join(s.XListMapKeys, ", ")+".")
	}
	for _, v := range s.XValidations {
		msg := v.Message
		if msg == "" {
			msg = "must hold"
		}
		out = append(out, "Rule "+code(v.Rule)+": "+prose(msg)+".")
	}
	return out
}

package refdoc

import (
	"context"
	"fmt"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
)

// Library renders library.md: every built-in policy with its metadata,
// as the engine reads it from the policy's # METADATA annotation.
func Library(ctx context.Context) ([]byte, error) {
	mods, err := policies.ReadFS(library.FS(), "library", false)
	if err != nil {
		return nil, err
	}
	e, err := policies.New(ctx, policies.Options{Modules: mods})
	if err != nil {
		return nil, err
	}
	metas := e.Policies() // sorted by id
	var b strings.Builder
	b.WriteString(header("Built-in policy library",
		fmt.Sprintf("The %d policies of the built-in library, version %s ([policies/library](../../policies/library)), "+
			"with the metadata each declares in its `# METADATA` annotation: the action is its default, which the "+
			"configuration's `policies` and a profile may override (`tollgate policies` lists the actions in force).",
			len(metas), library.Version)))
	b.WriteString("| ID | Title | Severity | Default action | Applies to |\n|---|---|---|---|---|\n")
	for _, m := range metas {
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s | %s |\n", m.ID, m.ID, prose(m.Title), m.Severity, m.Action, appliesTo(&m))
	}
	for _, m := range metas {
		fmt.Fprintf(&b, "\n## %s\n\n", m.ID)
		if m.Title != "" {
			fmt.Fprintf(&b, "**%s**\n\n", oneParagraphPerLine(m.Title))
		}
		if m.Description != "" {
			b.WriteString(oneParagraphPerLine(m.Description) + "\n\n")
		}
		fmt.Fprintf(&b, "- Severity: %s\n", m.Severity)
		fmt.Fprintf(&b, "- Default action: %s\n", m.Action)
		fmt.Fprintf(&b, "- Applies to: %s\n", appliesTo(&m))
		if m.AuditOnly {
			b.WriteString("- Admission: no (the audit and `tollgate check` judge it)\n")
		}
		if m.Inventory != "" {
			fmt.Fprintf(&b, "- Needs the cluster inventory: %s\n", m.Inventory)
		}
		if len(m.Controls) > 0 {
			controls := make([]string, len(m.Controls))
			for i, c := range m.Controls {
				controls[i] = code(c.String())
			}
			fmt.Fprintf(&b, "- Controls: %s\n", strings.Join(controls, ", "))
		}
		fmt.Fprintf(&b, "- Rego package: `%s` ([%s](../../policies/%s))\n", m.Package, m.Source, m.Source)
		if m.Remediation != "" {
			fmt.Fprintf(&b, "\nRemediation: %s\n", oneParagraphPerLine(m.Remediation))
		}
	}
	return []byte(b.String()), nil
}

// appliesTo says which objects a policy judges.
func appliesTo(m *policies.Metadata) string {
	var parts []string
	if m.Scope == policies.ScopePod {
		parts = append(parts, "Pods and every kind with a pod template")
	}
	for _, k := range m.Kinds {
		parts = append(parts, code(k))
	}
	if m.GovernedKinds {
		parts = append(parts, "the configuration's governed kinds")
	}
	if len(parts) == 0 {
		return "every kind"
	}
	return strings.Join(parts, ", ")
}

package compliance

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Format is a rendering of a report.
type Format string

// The formats.
const (
	FormatHTML     Format = "html"
	FormatMarkdown Format = "markdown"
	FormatJSON     Format = "json"
	FormatCSV      Format = "csv"
)

// ParseFormat reads a format name; "md" is markdown.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatHTML, FormatMarkdown, FormatJSON, FormatCSV:
		return f, nil
	case "md":
		return FormatMarkdown, nil
	}
	return "", fmt.Errorf("unknown format %q (want html, markdown, json or csv)", s)
}

// FormatOf guesses the format from a file name's extension; ok is false
// when the extension names none.
func FormatOf(path string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return FormatHTML, true
	case ".md", ".markdown":
		return FormatMarkdown, true
	case ".json":
		return FormatJSON, true
	case ".csv":
		return FormatCSV, true
	}
	return "", false
}

// Write renders the report in the format.
func Write(w io.Writer, f Format, r *Report) error {
	switch f {
	case FormatHTML:
		return writeHTML(w, r)
	case FormatMarkdown:
		return writeMarkdown(w, r)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV:
		return writeCSV(w, r)
	}
	return fmt.Errorf("unknown format %q", f)
}

// CSVHeader is the header row of the CSV rendering: one row per control
// and failing (or waived) resource, and one row with empty resource
// columns for a control with none. In a report over several clusters,
// cluster names the resource's cluster, cluster_policy_set the policy
// sets that cluster's Reports name, and cluster_verdicts the control's
// verdict in each cluster ("a=passed; b=failed"); all are empty otherwise.
var CSVHeader = []string{
	"framework", "framework_version", "control", "control_title", "verdict",
	"source", "policy", "resource_api_version", "resource_kind", "resource_namespace", "resource_name",
	"result", "severity", "message", "remediation",
	"exception", "exception_approver", "exception_ticket", "exception_expires",
	"cluster", "cluster_policy_set", "cluster_verdicts",
}

func writeCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	policySets := map[string]string{}
	for _, b := range r.Clusters {
		policySets[b.Cluster.Name] = strings.Join(b.Cluster.PolicySets, " ")
	}
	for i := range r.Frameworks {
		fw := &r.Frameworks[i]
		for j := range fw.Controls {
			c := &fw.Controls[j]
			head := []string{fw.ID, fw.Version, c.ID, c.Title, string(c.Verdict)}
			verdicts := clusterVerdictsCSV(c.Clusters)
			rows := append(append([]Result{}, c.Failures...), c.Waived...)
			if len(rows) == 0 {
				row := make([]string, len(CSVHeader))
				copy(row, head)
				row[len(row)-1] = verdicts
				if err := cw.Write(csvSafe(row)); err != nil {
					return err
				}
				continue
			}
			for k := range rows {
				res := &rows[k]
				row := append(append([]string{}, head...),
					res.Source, res.Policy, res.Resource.APIVersion, res.Resource.Kind, res.Resource.Namespace, res.Resource.Name,
					string(res.Result), string(res.Severity), res.Message, res.Remediation)
				if x := res.Exception; x != nil {
					row = append(row, x.Namespace+"/"+x.Name, x.Approver, x.Ticket, formatTime(x.Expires))
				} else {
					row = append(row, "", "", "", "")
				}
				row = append(row, res.Cluster, policySets[res.Cluster], verdicts)
				if err := cw.Write(csvSafe(row)); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// clusterVerdictsCSV renders a control's verdict per cluster as
// "a=passed; b=failed".
func clusterVerdictsCSV(vs []ClusterVerdict) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.Cluster + "=" + string(v.Verdict)
	}
	return strings.Join(parts, "; ")
}

// clusterVerdictsText renders a control's verdict per cluster for
// people: "a PASSED, b FAILED (2 failing)". esc escapes a cluster name.
func clusterVerdictsText(vs []ClusterVerdict, esc func(string) string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = esc(v.Cluster) + " " + v.Verdict.Label()
		switch {
		case v.Failures > 0:
			parts[i] += fmt.Sprintf(" (%d failing)", v.Failures)
		case v.Waived > 0:
			parts[i] += fmt.Sprintf(" (%d waived)", v.Waived)
		}
	}
	return strings.Join(parts, ", ")
}

// csvSafe keeps spreadsheet programs from reading a cell as a formula: a
// cell starting with =, +, -, @, tab or carriage return gets a leading
// apostrophe, as OWASP recommends for CSV exports.
func csvSafe(row []string) []string {
	for i, s := range row {
		if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
			row[i] = "'" + s
		}
	}
	return row
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// percent renders a score as a percentage with one decimal, or "n/a".
func percent(score *float64) string {
	if score == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", *score*100)
}

// humanTime renders a time for people: 2025-06-30 14:05 UTC.
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// matchText renders an exception's match for people.
func matchText(x *ExceptionInForce) string {
	if m := x.Match.String(); m != "" {
		return m
	}
	if len(x.Policies) == 0 {
		return "—"
	}
	return "every object"
}

// resourceText renders a result's resource, or its selector, or "—".
func resourceText(r *Result) string {
	if s := r.Resource.String(); s != "" {
		return s
	}
	if sel := r.Properties[PropResourceSelector]; sel != "" {
		return "selector " + sel
	}
	return "—"
}

// sortDenials orders examples newest first, then by policy and resource.
func sortDenials(ds []Denial) {
	slices.SortStableFunc(ds, func(a, b Denial) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Resource.String(), b.Resource.String()))
	})
}

// plural renders a count with its noun: "1 request", "2 requests".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

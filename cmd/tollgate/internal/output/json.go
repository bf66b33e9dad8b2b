package output

import (
	"encoding/json"
	"io"

	"github.com/tollgate-dev/tollgate/policies"
)

// jsonReport is the document the json format writes. It has its own shape,
// rather than marshalling Result, so every key is present even when empty:
// programs reading it can index fields without checking for them, and the
// embedded Finding's omitempty tags don't leak into this contract.
type jsonReport struct {
	Tool     string        `json:"tool"`
	Version  string        `json:"version"`
	Results  []jsonResult  `json:"results"`
	Problems []jsonProblem `json:"problems"`
	// Mutations are what admission would inject; left out when none.
	Mutations []Mutation `json:"mutations,omitempty"`
	Summary   Summary    `json:"summary"`
}

type jsonResult struct {
	File         string             `json:"file"`
	Line         int                `json:"line"`
	DocumentLine int                `json:"documentLine"`
	APIVersion   string             `json:"apiVersion"`
	Kind         string             `json:"kind"`
	Namespace    string             `json:"namespace"`
	Name         string             `json:"name"`
	Policy       string             `json:"policy"`
	Title        string             `json:"title"`
	Severity     policies.Severity  `json:"severity"`
	Action       policies.Action    `json:"action"`
	Message      string             `json:"message"`
	Path         string             `json:"path"`
	Controls     []policies.Control `json:"controls"`
	Remediation  string             `json:"remediation"`
	// Exception is the exception in force that waives the finding; left
	// out when none does.
	Exception *policies.ExceptionRef `json:"exception,omitempty"`
}

type jsonProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Policy  string `json:"policy"`
	Message string `json:"message"`
}

// writeJSON renders the report as one indented JSON document; results,
// problems and controls are always arrays, never null.
func writeJSON(w io.Writer, r *Report) error {
	doc := jsonReport{
		Tool:     r.toolName(),
		Version:  r.Version,
		Results:  []jsonResult{},
		Problems: []jsonProblem{},
		Summary:  r.Summary(),
	}
	doc.Mutations = sortedMutations(r.Mutations)
	for _, res := range sortedResults(r.Results) {
		controls := res.Controls
		if controls == nil {
			controls = []policies.Control{}
		}
		doc.Results = append(doc.Results, jsonResult{
			File:         res.File,
			Line:         res.Line,
			DocumentLine: res.DocumentLine,
			APIVersion:   res.APIVersion,
			Kind:         res.Kind,
			Namespace:    res.Namespace,
			Name:         res.Name,
			Policy:       res.Policy,
			Title:        res.Title,
			Severity:     res.Severity,
			Action:       res.Action,
			Message:      res.Message,
			Path:         res.Path,
			Controls:     controls,
			Remediation:  res.Remediation,
			Exception:    res.Exception,
		})
	}
	for _, p := range sortedProblems(r.Problems) {
		doc.Problems = append(doc.Problems, jsonProblem(p))
	}
	return encodeJSON(w, doc)
}

// encodeJSON writes v indented, without HTML escaping: the output is read by
// programs and people, not embedded in a web page, and "<stdin>" should
// read as written.
func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

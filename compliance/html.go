package compliance

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
)

// The HTML report is one self-contained file: inline CSS, system fonts,
// no scripts, images or links to anything outside it (except the
// framework's reference URL, as text an auditor can follow).
//
//go:embed report.html.tmpl
var htmlTemplate string

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"human":   humanTime,
	"rfc":     formatTime,
	"percent": percent,
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02")
	},
	"join":             strings.Join,
	"resource":         func(r Result) string { return resourceText(&r) },
	"match":            func(x ExceptionInForce) string { return matchText(&x) },
	"controls":         func(cs []policies.Control) string { return strings.ReplaceAll(FormatControls(cs), ",", ", ") },
	"latest":           latestDenials,
	"integrity":        func(l LogIntegrity) string { return integrityText(&l) },
	"anchor":           func(id string) string { return strings.NewReplacer("/", "-", ".", "-", " ", "-").Replace(id) },
	"minus":            func(a, b int) int { return a - b },
	"plural":           plural,
	"duration":         humanDuration,
	"golden":           goldenText,
	"deploymentsIntro": func() string { return deploymentsIntro },
	"upper":            func(o Outcome) string { return strings.ToUpper(string(o)) },
	"examined":         func(ev *Evidence) string { return examinedText(ev, plainText, plainText) },
	"hasPrefix":        strings.HasPrefix,
	"passedExamples":   func(ev *Evidence) string { return passedExamples(ev, plainText) },
	"automated":        automatedText,
	"clusterVerdicts":  func(vs []ClusterVerdict) string { return clusterVerdictsText(vs, plainText) },
	"barStyle": func(score *float64) template.CSS {
		if score == nil {
			return "width:0"
		}
		// A number this function formats: safe as CSS.
		return template.CSS(fmt.Sprintf("width:%.1f%%", *score*100))
	},
	"outcomeClass": func(o Outcome) string {
		switch o {
		case OutcomePass:
			return "v-passed"
		case OutcomeSkip:
			return "v-manual"
		case OutcomeWarn:
			return "v-passed-with-exceptions"
		}
		return "v-failed"
	},
}).Parse(htmlTemplate))

// plainText leaves text as it is: the template escapes what it prints.
func plainText(s string) string { return s }

func writeHTML(w io.Writer, r *Report) error {
	return htmlReport.Execute(w, r)
}

package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
)

// writeGitHub renders the report as GitHub Actions workflow commands, which
// the runner turns into annotations on the pull request's changed lines:
// ::error for enforce findings and problems, ::warning for warn, ::notice
// for audit and for findings an exception waives. A plain summary line closes the log.
func writeGitHub(w io.Writer, r *Report) error {
	var b strings.Builder
	for _, res := range sortedResults(r.Results) {
		msg := objectRef(res) + ": " + res.Message
		if res.Path != "" {
			msg += "\nat " + res.Path
		}
		if res.Remediation != "" {
			msg += "\nremediation: " + res.Remediation
		}
		cmd := githubCommand(res.Action)
		if res.Waived() {
			cmd = "notice"
			msg += "\n" + strings.TrimPrefix(waiver(res.Exception), " — ")
		}
		writeCommand(&b, cmd, res.File, res.Line, res.Policy, msg)
	}
	for _, p := range sortedProblems(r.Problems) {
		title := "tollgate input error"
		if p.Policy != "" {
			title = "tollgate policy error: " + p.Policy
		}
		writeCommand(&b, "error", p.File, p.Line, title, p.Message)
	}
	b.WriteString(summaryLine(r.Summary()))
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func githubCommand(a policies.Action) string {
	switch a {
	case policies.ActionEnforce:
		return "error"
	case policies.ActionWarn:
		return "warning"
	}
	return "notice"
}

// writeCommand writes one workflow command. The file is left out for
// standard input, which has no place in the repository to annotate.
func writeCommand(b *strings.Builder, cmd, file string, line int, title, msg string) {
	var props []string
	if file != "" && file != stdinName {
		props = append(props, "file="+escapeProperty(strings.ReplaceAll(file, `\`, "/")))
		if line > 0 {
			props = append(props, fmt.Sprintf("line=%d", line))
		}
	}
	if title != "" {
		props = append(props, "title="+escapeProperty(title))
	}
	b.WriteString("::")
	b.WriteString(cmd)
	if len(props) > 0 {
		b.WriteByte(' ')
		b.WriteString(strings.Join(props, ","))
	}
	b.WriteString("::")
	b.WriteString(escapeData(msg))
	b.WriteByte('\n')
}

// escapeData escapes a workflow command's message the way the runner
// unescapes it, so a newline in a message cannot end the command and start
// another one on the next line.
func escapeData(s string) string {
	return printable(strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s))
}

// escapeProperty escapes a workflow command's property value: as data, plus
// the ':' and ',' that delimit properties.
func escapeProperty(s string) string {
	return printable(strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s))
}

package policies

import (
	"fmt"
	"strconv"
	"strings"
)

// Action is what a violation of a policy does to the request that caused it.
// The webhook, the CLI and the audit all read it the same way.
type Action string

// The actions a policy can take. Enforce denies, Warn admits with a warning
// kubectl prints, Audit admits and records. Disabled turns a policy off.
const (
	ActionEnforce  Action = "enforce"
	ActionWarn     Action = "warn"
	ActionAudit    Action = "audit"
	ActionDisabled Action = "disabled"
)

// ParseAction reads an action name as written in policy metadata or the
// config file; the empty string is not an action.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case ActionEnforce, ActionWarn, ActionAudit, ActionDisabled:
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q (want enforce, warn, audit or disabled)", s)
}

// Severity ranks findings so reports and CI gates can sort and filter them.
type Severity string

// The severities, from most to least severe.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
	SeverityInfo     Severity = "info"
)

// ParseSeverity reads a severity name as written in policy metadata.
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(strings.ToLower(strings.TrimSpace(s))); v {
	case SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityInfo:
		return v, nil
	}
	return "", fmt.Errorf("unknown severity %q (want critical, high, medium, low or info)", s)
}

// Rank orders severities: critical is 4, info 0, anything unknown -1.
func (s Severity) Rank() int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	case SeverityInfo:
		return 0
	}
	return -1
}

// Control is one compliance control a policy evidences, such as
// {Framework: "cis", ID: "5.2.2"}; reports group findings by it.
type Control struct {
	Framework string `json:"framework" yaml:"framework"`
	ID        string `json:"id" yaml:"id"`
}

// String renders a control as framework:id.
func (c Control) String() string { return c.Framework + ":" + c.ID }

// Finding is one violation of one policy by one object: what is wrong, where
// (the JSON path of the offending field), how bad, and what to do about it.
type Finding struct {
	// Policy is the policy id, e.g. "pss-baseline-privileged".
	Policy string `json:"policy"`
	// Title is the policy title from its metadata.
	Title string `json:"title,omitempty"`
	// Message says what is wrong, for a person.
	Message string `json:"message"`
	// Severity is the policy's severity unless the violation set its own.
	Severity Severity `json:"severity"`
	// Action is the effective action after config overrides.
	Action Action `json:"action"`
	// Path is the offending field in the object as given, e.g.
	// spec.template.spec.containers[1].securityContext.privileged.
	Path string `json:"path,omitempty"`
	// Controls are the compliance controls the policy evidences.
	Controls []Control `json:"controls,omitempty"`
	// Remediation says how to fix it.
	Remediation string `json:"remediation,omitempty"`
	// Exception is set when a PolicyException waives this finding: it is
	// reported but neither denies nor warns.
	Exception *ExceptionRef `json:"exception,omitempty"`
	// Details are facts of the finding for machines, beside the message
	// for people: a namespace's move between profiles names the
	// namespace, the profiles and the user, which the compliance report
	// reads from the decision log.
	Details map[string]string `json:"details,omitempty"`
}

// Waived reports whether an exception covers the finding.
func (f *Finding) Waived() bool { return f.Exception != nil }

// PolicyError records a policy that could not be evaluated for an input: it
// timed out, raised an error or panicked. The other policies still ran.
type PolicyError struct {
	Policy string `json:"policy"`
	Err    error  `json:"-"`
}

// Error implements error.
func (e *PolicyError) Error() string { return fmt.Sprintf("policy %s: %v", e.Policy, e.Err) }

// Unwrap lets errors.Is see context.DeadlineExceeded and friends.
func (e *PolicyError) Unwrap() error { return e.Err }

// Decision is the outcome of evaluating one input against every policy that
// applies to it.
type Decision struct {
	Findings []Finding      `json:"findings"`
	Errors   []*PolicyError `json:"errors,omitempty"`
	// Applied counts the policies that applied to the object, so an
	// audit knows how many passed without listing them.
	Applied int `json:"-"`
	// Checked names the Rego policies that applied, outside admission
	// (the audit and check): the evidence of what was examined that a
	// compliance report lists for each control.
	Checked []string `json:"-"`
}

// Denied reports whether any finding enforces.
func (d *Decision) Denied() bool {
	for _, f := range d.Findings {
		if f.Action == ActionEnforce && !f.Waived() {
			return true
		}
	}
	return false
}

// FormatPath renders a path of object keys (strings) and array indexes
// (ints) the way kubectl and Kubernetes errors do:
// spec.containers[0].securityContext, metadata.annotations["a.b/c"].
func FormatPath(segments []any) string {
	var b strings.Builder
	for _, s := range segments {
		switch v := s.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", v)
		case string:
			if isPlainKey(v) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(v)
			} else {
				fmt.Fprintf(&b, "[%q]", v)
			}
		default:
			fmt.Fprintf(&b, "[%v]", v)
		}
	}
	return b.String()
}

func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// ParsePath is the inverse of FormatPath: it splits
// spec.containers[0].securityContext or metadata.annotations["a.b/c"] into
// keys (strings) and indexes (ints). Malformed paths are an error.
func ParsePath(p string) ([]any, error) {
	var segs []any
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			if i == 0 || i == len(p)-1 || p[i+1] == '.' || p[i+1] == '[' {
				return nil, fmt.Errorf("path %q: misplaced '.' at offset %d", p, i)
			}
			i++
		case '[':
			end := strings.IndexByte(p[i:], ']')
			if i+1 < len(p) && p[i+1] == '"' {
				// A quoted key may hold ']' itself: find the closing quote.
				s, rest, err := unquotePrefix(p[i+1:])
				if err != nil || !strings.HasPrefix(rest, "]") {
					return nil, fmt.Errorf("path %q: bad quoted key at offset %d", p, i)
				}
				segs = append(segs, s)
				i = len(p) - len(rest) + 1
				continue
			}
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed '[' at offset %d", p, i)
			}
			n, err := strconv.Atoi(p[i+1 : i+end])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("path %q: %q is not an index", p, p[i+1:i+end])
			}
			segs = append(segs, n)
			i += end + 1
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			segs = append(segs, p[i:j])
			i = j
		}
	}
	return segs, nil
}

func unquotePrefix(s string) (string, string, error) {
	for j := 1; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == '"' {
			v, err := strconv.Unquote(s[:j+1])
			return v, s[j+1:], err
		}
	}
	return "", "", fmt.Errorf("unterminated quote")
}

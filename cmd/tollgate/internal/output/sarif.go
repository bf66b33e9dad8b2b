package output

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/tollgate-dev/tollgate/policies"
)

// SARIF constants. The schema URI is the one GitHub's documentation uses;
// the fingerprint key is versioned so a change to what it hashes can move
// to a new key instead of silently reopening every alert.
const (
	sarifSchema         = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion        = "2.1.0"
	sarifInformationURI = "https://tollgate.dev"
	sarifSrcRoot        = "%SRCROOT%"
	sarifFingerprintKey = "tollgate/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
	// Properties carry what admission would inject (the JSON patch per
	// object); SARIF's property bag is where tools keep such extras.
	Properties *sarifRunProps `json:"properties,omitempty"`
}

type sarifRunProps struct {
	Mutations []Mutation `json:"mutations"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string          `json:"id"`
	Name                 string          `json:"name,omitempty"`
	ShortDescription     sarifMessage    `json:"shortDescription"`
	FullDescription      sarifMessage    `json:"fullDescription"`
	Help                 *sarifMessage   `json:"help,omitempty"`
	HelpURI              string          `json:"helpUri,omitempty"`
	DefaultConfiguration sarifRuleConfig `json:"defaultConfiguration"`
	Properties           sarifRuleProps  `json:"properties"`
}

type sarifMessage struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity,omitempty"`
	Precision        string   `json:"precision"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifMessage      `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	// Suppressions record the exception that waives the result, so code
	// scanning shows it as dismissed rather than open.
	Suppressions []sarifSuppression `json:"suppressions,omitempty"`
	Properties   sarifResultProps   `json:"properties"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification"`
}

type sarifResultProps struct {
	Object   string   `json:"object"`
	Path     string   `json:"path"`
	Action   string   `json:"action"`
	Severity string   `json:"severity"`
	Controls []string `json:"controls"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
	Region           *sarifRegion          `json:"region,omitempty"`
}

type sarifArtifactLocation struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level          string          `json:"level"`
	Message        sarifMessage    `json:"message"`
	Locations      []sarifLocation `json:"locations,omitempty"`
	AssociatedRule *sarifRuleRef   `json:"associatedRule,omitempty"`
}

type sarifRuleRef struct {
	ID    string `json:"id"`
	Index int    `json:"index"`
}

// writeSARIF renders the report as SARIF 2.1.0 in the shape GitHub code
// scanning ingests: one run, one rule per policy, one result per finding
// with a stable fingerprint, and problems as tool execution notifications.
func writeSARIF(w io.Writer, r *Report) error {
	rules, index := sarifRules(r)
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           r.toolName(),
			Version:        r.Version,
			InformationURI: sarifInformationURI,
			Rules:          rules,
		}},
		Invocations: []sarifInvocation{{ExecutionSuccessful: len(r.Problems) == 0}},
		Results:     []sarifResult{},
	}
	if len(r.Mutations) > 0 {
		run.Properties = &sarifRunProps{Mutations: sortedMutations(r.Mutations)}
	}
	for _, res := range sortedResults(r.Results) {
		controls := make([]string, len(res.Controls))
		for i, c := range res.Controls {
			controls[i] = c.String()
		}
		var suppressions []sarifSuppression
		if res.Waived() {
			suppressions = []sarifSuppression{{Kind: "external", Justification: strings.TrimPrefix(waiver(res.Exception), " — ")}}
		}
		run.Results = append(run.Results, sarifResult{
			Suppressions:        suppressions,
			RuleID:              res.Policy,
			RuleIndex:           index[res.Policy],
			Level:               sarifLevel(res.Action),
			Message:             sarifMessage{Text: objectRef(res) + ": " + res.Message},
			Locations:           []sarifLocation{sarifLocationOf(res.File, res.Line)},
			PartialFingerprints: map[string]string{sarifFingerprintKey: fingerprint(res)},
			Properties: sarifResultProps{
				Object:   objectRef(res),
				Path:     res.Path,
				Action:   string(res.Action),
				Severity: string(res.Severity),
				Controls: controls,
			},
		})
	}
	for _, p := range sortedProblems(r.Problems) {
		n := sarifNotification{Level: "error", Message: sarifMessage{Text: problemLine(Problem{Policy: p.Policy, Message: p.Message})}}
		if p.File != "" {
			n.Locations = []sarifLocation{sarifLocationOf(p.File, p.Line)}
		}
		if i, ok := index[p.Policy]; ok {
			n.AssociatedRule = &sarifRuleRef{ID: p.Policy, Index: i}
		}
		run.Invocations[0].ToolExecutionNotifications = append(run.Invocations[0].ToolExecutionNotifications, n)
	}
	return encodeJSON(w, sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

// sarifRules makes one rule per policy that ran, sorted by id, plus a rule
// for any policy that has findings but is missing from Report.Policies, so
// every result's ruleIndex points at its rule. It returns the rules and the
// index of each policy id.
func sarifRules(r *Report) ([]sarifRule, map[string]int) {
	byID := map[string]policies.Metadata{}
	for _, m := range r.Policies {
		if _, dup := byID[m.ID]; !dup {
			byID[m.ID] = m
		}
	}
	for _, res := range r.Results {
		if _, ok := byID[res.Policy]; !ok {
			byID[res.Policy] = policies.Metadata{
				ID:          res.Policy,
				Title:       res.Title,
				Severity:    res.Severity,
				Action:      res.Action,
				Controls:    res.Controls,
				Remediation: res.Remediation,
			}
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rules := make([]sarifRule, len(ids))
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		rules[i] = sarifRuleOf(byID[id])
		if u := r.HelpURIs[id]; u != "" {
			rules[i].HelpURI = u
		}
		index[id] = i
	}
	return rules, index
}

func sarifRuleOf(m policies.Metadata) sarifRule {
	short := cmp.Or(m.Title, m.ID)
	rule := sarifRule{
		ID:                   m.ID,
		Name:                 pascalCase(m.ID),
		ShortDescription:     sarifMessage{Text: short},
		FullDescription:      sarifMessage{Text: cmp.Or(m.Description, short)},
		Help:                 sarifHelp(m),
		HelpURI:              sarifInformationURI + "/policies/" + url.PathEscape(m.ID),
		DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(m.Action)},
		Properties: sarifRuleProps{
			Tags:             sarifTags(m.Controls),
			SecuritySeverity: securitySeverity(m.Severity),
			Precision:        "very-high",
		},
	}
	return rule
}

// sarifHelp is the rule's help: its remediation and the controls it
// evidences, which GitHub shows beside every alert of the rule.
func sarifHelp(m policies.Metadata) *sarifMessage {
	var text, md []string
	if m.Remediation != "" {
		text = append(text, "Remediation: "+m.Remediation)
		md = append(md, "**Remediation:** "+m.Remediation)
	}
	if len(m.Controls) > 0 {
		plain := make([]string, len(m.Controls))
		code := make([]string, len(m.Controls))
		for i, c := range m.Controls {
			plain[i] = c.String()
			code[i] = "`" + strings.ReplaceAll(c.String(), "`", "'") + "`"
		}
		text = append(text, "Controls: "+strings.Join(plain, ", "))
		md = append(md, "**Controls:** "+strings.Join(code, ", "))
	}
	if len(text) == 0 {
		desc := cmp.Or(m.Description, m.Title)
		if desc == "" {
			return nil
		}
		return &sarifMessage{Text: desc}
	}
	return &sarifMessage{Text: strings.Join(text, "\n\n"), Markdown: strings.Join(md, "\n\n")}
}

// sarifTags are "security", which GitHub needs to treat the rule as a
// security rule, followed by the compliance frameworks the policy evidences.
// The schema requires tags to be unique.
func sarifTags(controls []policies.Control) []string {
	var frameworks []string
	for _, c := range controls {
		if c.Framework != "" && c.Framework != "security" {
			frameworks = append(frameworks, c.Framework)
		}
	}
	slices.Sort(frameworks)
	return append([]string{"security"}, slices.Compact(frameworks)...)
}

// securitySeverity is the score GitHub ranks security alerts by: at least
// 9.0 is critical, 7.0 high, 4.0 medium, above 0 low.
func securitySeverity(s policies.Severity) string {
	switch s {
	case policies.SeverityCritical:
		return "9.0"
	case policies.SeverityHigh:
		return "7.0"
	case policies.SeverityMedium:
		return "5.0"
	case policies.SeverityLow:
		return "3.0"
	case policies.SeverityInfo:
		return "0.0"
	}
	return ""
}

// sarifLevel maps an action to a SARIF level: only enforce fails the gate,
// so only enforce is an error.
func sarifLevel(a policies.Action) string {
	switch a {
	case policies.ActionEnforce:
		return "error"
	case policies.ActionWarn:
		return "warning"
	case policies.ActionDisabled:
		return "none"
	}
	return "note"
}

func sarifLocationOf(file string, line int) sarifLocation {
	uri, base := artifactURI(file)
	loc := sarifLocation{PhysicalLocation: sarifPhysicalLocation{
		ArtifactLocation: sarifArtifactLocation{URI: uri, URIBaseID: base},
	}}
	if line > 0 {
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: line}
	}
	return loc
}

// artifactURI turns a file as the user named it into a SARIF artifact URI:
// relative paths stay relative to %SRCROOT% (the checkout, for GitHub) with
// forward slashes and percent-encoding; absolute paths become file: URIs;
// standard input becomes "stdin".
func artifactURI(file string) (uri, baseID string) {
	if file == stdinName {
		return "stdin", sarifSrcRoot
	}
	p := strings.ReplaceAll(file, `\`, "/")
	if len(p) >= 3 && p[1] == ':' && p[2] == '/' && isASCIILetter(p[0]) {
		p = "/" + p // C:/x becomes file:///C:/x
	}
	if strings.HasPrefix(p, "/") {
		return (&url.URL{Scheme: "file", Path: path.Clean(p)}).String(), ""
	}
	return (&url.URL{Path: path.Clean(p)}).String(), sarifSrcRoot
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// fingerprint identifies a finding across runs without its line, so GitHub
// keeps one alert open while unrelated edits move the object around the
// file, and closes it when the finding goes away.
func fingerprint(r Result) string {
	uri, _ := artifactURI(r.File)
	h := sha256.New()
	for _, part := range []string{uri, r.Kind, r.Namespace + "/" + r.Name, r.Policy, r.Path} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pascalCase turns a policy id into the PascalCase rule name SARIF
// recommends: "pss-baseline-privileged" becomes "PssBaselinePrivileged".
func pascalCase(id string) string {
	var b strings.Builder
	upper := true
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			if upper && r >= 'a' && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			upper = false
		default:
			upper = true
		}
	}
	return b.String()
}

package alerts

import (
	"strings"
	"unicode/utf16"
)

// Block Kit limits (docs.slack.dev, reference/block-kit/blocks), counted
// in characters; we count UTF-16 units, which is never fewer.
const (
	slackHeaderMax  = 150  // header block text
	slackSectionMax = 3000 // section block text
	slackFieldMax   = 2000 // each section field
	slackFieldsMax  = 10   // fields in a section
)

type slackMessage struct {
	Text   string       `json:"text"` // the notification, and what clients without blocks show
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
	// Verbatim stops Slack turning names that look like URLs, #channels
	// or @mentions into links.
	Verbatim bool `json:"verbatim,omitempty"`
}

func mrkdwnText(s string) slackText { return slackText{Type: "mrkdwn", Text: s, Verbatim: true} }

// slackPayload is a Block Kit message: a header, the summary, the facts
// as fields, the top workloads, and a context line with the alert's ID
// and the console link.
func slackPayload(a Alert, omitted int) ([]byte, error) {
	m := newMessage(a, omitted)
	msg := slackMessage{
		Text: mrkdwn(m.title+": "+m.summary, slackSectionMax),
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: cut(plainEscaper.Replace(m.title), slackHeaderMax)}},
			{Type: "section", Text: ptr(mrkdwnText(mrkdwn(m.summary, slackSectionMax)))},
		},
	}
	if len(m.facts) > 0 {
		fields := make([]slackText, 0, len(m.facts))
		for _, f := range m.facts[:min(len(m.facts), slackFieldsMax)] {
			label := "*" + mrkdwn(f.label, 100) + "*\n"
			fields = append(fields, mrkdwnText(label+mrkdwn(f.value, slackFieldMax-units(label))))
		}
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Fields: fields})
	}
	if len(m.workloads) > 0 {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: ptr(mrkdwnText(slackWorkloads(m)))})
	}
	footer := []slackText{mrkdwnText(mrkdwn(m.footer, slackSectionMax))}
	if m.url != "" {
		footer = append(footer, mrkdwnText("<"+slackEscaper.Replace(m.url)+"|Open in console>"))
	}
	msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: footer})
	return marshal(msg)
}

// slackWorkloads lists the top workloads in one section, as many as fit
// its 3,000 characters, and counts the rest.
func slackWorkloads(m message) string {
	const heading = "*Top workloads by cost*"
	var b strings.Builder
	b.WriteString(heading)
	n, shown := units(heading), 0
	reserve := units("\n…and 99999 more")
	for _, w := range m.workloads {
		line := "\n• " + mrkdwn(w.label, 600) + " — " + mrkdwn(w.value, 100)
		if n+units(line) > slackSectionMax-reserve {
			break
		}
		b.WriteString(line)
		n += units(line)
		shown++
	}
	if rest := m.omitted + len(m.workloads) - shown; rest > 0 {
		b.WriteString("\n")
		b.WriteString(message{omitted: rest}.more())
	}
	return b.String()
}

// slackEscaper escapes the three characters Slack parses in text objects,
// so that a name can neither mention (<!channel>) nor link.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// plainEscaper keeps Slack's control characters out of plain_text, where
// Slack documents no escaping: a Budget's name cannot hold them anyway,
// and a look-alike is better than a chance of <!channel> being read.
var plainEscaper = strings.NewReplacer("&", "＆", "<", "‹", ">", "›")

// mrkdwn escapes s for a mrkdwn text object and cuts it to limit
// characters, never inside an entity.
func mrkdwn(s string, limit int) string {
	if e := slackEscaper.Replace(s); units(e) <= limit {
		return e
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		piece := slackEscaper.Replace(string(r))
		if n+units(piece) > limit-1 {
			break
		}
		b.WriteString(piece)
		n += units(piece)
	}
	b.WriteString("…")
	return b.String()
}

// cut shortens s to limit characters, counted as Slack's limits are.
func cut(s string, limit int) string {
	if units(s) <= limit {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		w := runeUnits(r)
		if n+w > limit-1 {
			break
		}
		b.WriteRune(r)
		n += w
	}
	b.WriteString("…")
	return b.String()
}

// units counts s in UTF-16 code units, as JavaScript's length does: an
// emoji counts twice.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if n := utf16.RuneLen(r); n > 0 {
		return n
	}
	return 1
}

func ptr[T any](v T) *T { return &v }

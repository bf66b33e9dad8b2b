package alerts

import "strings"

// The message a Teams workflow webhook ("Post to a channel when a webhook
// request is received") accepts: an activity with one Adaptive Card
// attachment. Version 1.4 renders in every Teams client.
type teamsMessage struct {
	Type        string            `json:"type"` // "message"
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"` // null: the card is inline
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string        `json:"$schema"`
	Type    string        `json:"type"`
	Version string        `json:"version"`
	Body    []cardElement `json:"body"`
	Actions []cardAction  `json:"actions,omitempty"`
	MSTeams *cardTeams    `json:"msteams,omitempty"`
}

type cardTeams struct {
	Width string `json:"width"`
}

// cardElement is a TextBlock or a FactSet.
type cardElement struct {
	Type     string     `json:"type"`
	Text     string     `json:"text,omitempty"`
	Wrap     bool       `json:"wrap,omitempty"`
	Size     string     `json:"size,omitempty"`
	Weight   string     `json:"weight,omitempty"`
	Color    string     `json:"color,omitempty"`
	IsSubtle bool       `json:"isSubtle,omitempty"`
	Spacing  string     `json:"spacing,omitempty"`
	Facts    []cardFact `json:"facts,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type cardAction struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// teamsPayload is an Adaptive Card: a title coloured by how bad it is,
// the summary, the facts, the top workloads as a second fact set, and a
// subtle line with the alert's ID; the console link is a button.
func teamsPayload(a Alert, omitted int) ([]byte, error) {
	m := newMessage(a, omitted)
	color := "Warning"
	if m.over {
		color = "Attention"
	}
	body := []cardElement{
		{Type: "TextBlock", Text: cardText(m.title), Size: "Large", Weight: "Bolder", Color: color, Wrap: true},
		{Type: "TextBlock", Text: cardText(m.summary), Wrap: true},
	}
	if len(m.facts) > 0 {
		body = append(body, cardElement{Type: "FactSet", Facts: cardFacts(m.facts)})
	}
	if len(m.workloads) > 0 {
		body = append(body,
			cardElement{Type: "TextBlock", Text: "Top workloads by cost", Weight: "Bolder", Spacing: "Medium", Wrap: true},
			cardElement{Type: "FactSet", Facts: cardFacts(m.workloads)})
	}
	if m.omitted > 0 {
		body = append(body, cardElement{Type: "TextBlock", Text: cardText(m.more()), IsSubtle: true, Wrap: true})
	}
	body = append(body, cardElement{Type: "TextBlock", Text: cardText(m.footer), Size: "Small", IsSubtle: true, Wrap: true})
	card := adaptiveCard{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: "1.4",
		Body:    body,
		MSTeams: &cardTeams{Width: "Full"},
	}
	if m.url != "" {
		card.Actions = []cardAction{{Type: "Action.OpenUrl", Title: "Open in console", URL: m.url}}
	}
	return marshal(teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content:     card,
		}},
	})
}

func cardFacts(fs []fact) []cardFact {
	out := make([]cardFact, len(fs))
	for i, f := range fs {
		out[i] = cardFact{Title: cardText(f.label), Value: cardText(f.value)}
	}
	return out
}

// cardEscaper escapes what Teams' Markdown in TextBlocks and facts would
// read as emphasis or a link, so a name shows as written.
var cardEscaper = strings.NewReplacer(
	`\`, `\\`, `*`, `\*`, `_`, `\_`, "`", "\\`", `~`, `\~`, `[`, `\[`, `]`, `\]`,
)

// cardText escapes s for Adaptive Card Markdown, including a leading list
// or heading marker.
func cardText(s string) string {
	s = cardEscaper.Replace(s)
	if s != "" && strings.ContainsRune("-+#>", rune(s[0])) {
		s = `\` + s
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i > 0 && strings.HasPrefix(s[i:], ". ") {
		s = s[:i] + `\` + s[i:]
	}
	return s
}

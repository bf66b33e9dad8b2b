package alerts

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
)

// receiver stands in, on loopback, for a Slack incoming webhook, a Teams
// workflow webhook or a CloudEvents sink. It checks every payload against
// the format its vendor documents, with its own reading of the limits
// (not this package's constants), records it, and answers as scripted.
// A payload that breaks the format fails the test and is answered 400, as
// the real service would.
type receiver struct {
	t    *testing.T
	typ  ChannelType
	path string // the webhook URL's path and query, which must arrive as given
	srv  *httptest.Server
	done chan struct{} // closed when the test ends

	mu       sync.Mutex
	answers  []answer // one per request, in order; then 200
	requests int
	bodies   [][]byte // valid payloads
	texts    []string // what a person (or program) reads in each
}

// answer is a scripted reply.
type answer struct {
	status int
	header map[string]string
	body   string
	hang   bool // never answer, until the client gives up
}

func newReceiver(t *testing.T, typ ChannelType, path string, answers ...answer) *receiver {
	t.Helper()
	r := &receiver{t: t, typ: typ, path: path, answers: answers}
	r.done = make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(r.done) }) // runs first: hanging answers end
	return r
}

// url is the webhook URL the receiver's Secret holds.
func (r *receiver) url() string { return r.srv.URL + r.path }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests++
	n := r.requests
	var ans answer
	if n <= len(r.answers) {
		ans = r.answers[n-1]
	}
	r.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		r.t.Errorf("%s receiver: reading the body: %v", r.typ, err)
		return
	}
	if ans.hang {
		// The body is read, so the server notices the client leaving.
		select {
		case <-req.Context().Done():
		case <-r.done:
		}
		return
	}
	if ans.status != 0 {
		for k, v := range ans.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(ans.status)
		io.WriteString(w, ans.body)
		return
	}
	var problems []string
	if req.Method != http.MethodPost {
		problems = append(problems, "method "+req.Method+", want POST")
	}
	if got := req.URL.RequestURI(); got != r.path {
		problems = append(problems, fmt.Sprintf("posted to %q, want %q", got, r.path))
	}
	var text string
	switch r.typ {
	case Slack:
		text, problems = checkSlack(req.Header, body, problems)
	case Teams:
		text, problems = checkTeams(req.Header, body, problems)
	case CloudEvents:
		text, problems = checkCloudEvent(req.Header, body, problems)
	}
	if len(problems) > 0 {
		r.t.Errorf("%s receiver: invalid payload:\n  %s\n%s", r.typ, strings.Join(problems, "\n  "), body)
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.texts = append(r.texts, text)
	r.mu.Unlock()
	switch r.typ {
	case Slack:
		io.WriteString(w, "ok")
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (r *receiver) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func (r *receiver) received() (bodies [][]byte, texts []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies), slices.Clone(r.texts)
}

// check collects problems with a decoded JSON document.
type check struct {
	problems []string
	text     strings.Builder
}

func (c *check) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *check) object(v any, at string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail("%s: want an object, got %T", at, v)
	}
	return m
}

func (c *check) array(v any, at string, lo, hi int) []any {
	a, ok := v.([]any)
	switch {
	case !ok:
		c.fail("%s: want an array, got %T", at, v)
	case len(a) < lo || len(a) > hi:
		c.fail("%s: %d items, want %d to %d", at, len(a), lo, hi)
	}
	return a
}

func (c *check) str(v any, at string, maxLen int) string {
	s, ok := v.(string)
	switch {
	case !ok:
		c.fail("%s: want a string, got %T", at, v)
	case s == "":
		c.fail("%s: empty", at)
	case maxLen > 0 && len(utf16.Encode([]rune(s))) > maxLen:
		c.fail("%s: %d characters, more than %d", at, len(utf16.Encode([]rune(s))), maxLen)
	}
	return s
}

func (c *check) oneOf(v any, at string, allowed ...string) {
	if s, ok := v.(string); !ok || !slices.Contains(allowed, s) {
		c.fail("%s: %v, want one of %v", at, v, allowed)
	}
}

func (c *check) boolean(m map[string]any, key, at string) {
	if v, ok := m[key]; ok {
		if _, isBool := v.(bool); !isBool {
			c.fail("%s.%s: want a boolean, got %T", at, key, v)
		}
	}
}

func decode(body []byte, c *check) any {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		c.fail("not JSON: %v", err)
	}
	return v
}

// Slack Block Kit, as documented on docs.slack.dev (reference/block-kit):
// at most 50 blocks; header text plain_text up to 150 characters; section
// text up to 3,000, or up to 10 fields of up to 2,000; context up to 10
// elements; &, < and > escaped in mrkdwn, < only opening a link.
func checkSlack(h http.Header, body []byte, problems []string) (string, []string) {
	c := &check{problems: problems}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		c.fail("Content-Type %q, want application/json", h.Get("Content-Type"))
	}
	msg := c.object(decode(body, c), "message")
	if msg == nil {
		return "", c.problems
	}
	c.slackMrkdwn(c.str(msg["text"], "text", 40000), "text")
	for i, b := range c.array(msg["blocks"], "blocks", 1, 50) {
		at := fmt.Sprintf("blocks[%d]", i)
		block := c.object(b, at)
		if id, ok := block["block_id"]; ok {
			c.str(id, at+".block_id", 255)
		}
		switch block["type"] {
		case "header":
			t := c.object(block["text"], at+".text")
			c.oneOf(t["type"], at+".text.type", "plain_text")
			c.slackPlain(c.str(t["text"], at+".text.text", 150), at+".text.text")
		case "section":
			text, fields := block["text"], block["fields"]
			if text == nil && fields == nil {
				c.fail("%s: a section needs text or fields", at)
			}
			if text != nil {
				c.slackText(text, at+".text", 3000)
			}
			if fields != nil {
				for j, f := range c.array(fields, at+".fields", 1, 10) {
					c.slackText(f, fmt.Sprintf("%s.fields[%d]", at, j), 2000)
				}
			}
		case "context":
			for j, e := range c.array(block["elements"], at+".elements", 1, 10) {
				c.slackText(e, fmt.Sprintf("%s.elements[%d]", at, j), 3000)
			}
		case "divider":
		default:
			c.fail("%s.type: %v is not a block this message should use", at, block["type"])
		}
	}
	return c.text.String(), c.problems
}

func (c *check) slackText(v any, at string, maxLen int) {
	t := c.object(v, at)
	if t == nil {
		return
	}
	c.oneOf(t["type"], at+".type", "plain_text", "mrkdwn")
	s := c.str(t["text"], at+".text", maxLen)
	switch t["type"] {
	case "mrkdwn":
		if _, ok := t["emoji"]; ok {
			c.fail("%s.emoji: only plain_text takes emoji", at)
		}
		c.boolean(t, "verbatim", at)
		c.slackMrkdwn(s, at+".text")
	case "plain_text":
		if _, ok := t["verbatim"]; ok {
			c.fail("%s.verbatim: only mrkdwn takes verbatim", at)
		}
		c.boolean(t, "emoji", at)
		c.slackPlain(s, at+".text")
	}
}

// slackPlain checks plain_text holds none of the characters Slack parses
// in text objects, for which it documents escapes only in mrkdwn.
func (c *check) slackPlain(s, at string) {
	if strings.ContainsAny(s, "<>&") {
		c.fail("%s: plain_text holding one of <>&: %q", at, clip(s))
	}
	c.text.WriteString(s + "\n")
}

var (
	slackEntity = regexp.MustCompile(`^&(amp|lt|gt);`)
	slackLink   = regexp.MustCompile(`^<(https?://[^\s<>|]+)\|([^<>]+)>`)
)

// slackMrkdwn checks the escaping Slack asks for (docs.slack.dev,
// messaging/formatting-message-text): & < > escaped, < only for a link.
func (c *check) slackMrkdwn(s, at string) {
	var plain strings.Builder
	for i := 0; i < len(s); {
		rest := s[i:]
		switch s[i] {
		case '&':
			m := slackEntity.FindString(rest)
			if m == "" {
				c.fail("%s: unescaped & at %d: %q", at, i, clip(rest))
				m = "&"
			}
			plain.WriteString(map[string]string{"&amp;": "&", "&lt;": "<", "&gt;": ">", "&": "&"}[m])
			i += len(m)
		case '<':
			m := slackLink.FindStringSubmatch(rest)
			if m == nil {
				c.fail("%s: < that opens no link at %d: %q", at, i, clip(rest))
				i++
				continue
			}
			if u, err := url.Parse(strings.ReplaceAll(m[1], "&amp;", "&")); err != nil || u.Host == "" {
				c.fail("%s: link to an invalid URL %q", at, m[1])
			}
			plain.WriteString(m[2] + " " + m[1])
			i += len(m[0])
		case '>':
			c.fail("%s: unescaped > at %d: %q", at, i, clip(rest))
			i++
		default:
			plain.WriteByte(s[i])
			i++
		}
	}
	c.text.WriteString(plain.String() + "\n")
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return s
}

// Teams workflow webhooks ("Post to a channel when a webhook request is
// received") take a message with an Adaptive Card attachment
// (learn.microsoft.com, connectors/teams and Adaptive Cards 1.4/1.5),
// about 28 KB at most.
func checkTeams(h http.Header, body []byte, problems []string) (string, []string) {
	c := &check{problems: problems}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		c.fail("Content-Type %q, want application/json", h.Get("Content-Type"))
	}
	if len(body) > 28000 {
		c.fail("payload is %d bytes, more than Teams' ~28 KB", len(body))
	}
	msg := c.object(decode(body, c), "message")
	if msg == nil {
		return "", c.problems
	}
	c.oneOf(msg["type"], "type", "message")
	for i, a := range c.array(msg["attachments"], "attachments", 1, 10) {
		at := fmt.Sprintf("attachments[%d]", i)
		att := c.object(a, at)
		c.oneOf(att["contentType"], at+".contentType", "application/vnd.microsoft.card.adaptive")
		if v, ok := att["contentUrl"]; !ok || v != nil {
			c.fail("%s.contentUrl: want null", at)
		}
		card := c.object(att["content"], at+".content")
		if card == nil {
			continue
		}
		at += ".content"
		c.oneOf(card["$schema"], at+".$schema", "http://adaptivecards.io/schemas/adaptive-card.json")
		c.oneOf(card["type"], at+".type", "AdaptiveCard")
		c.oneOf(card["version"], at+".version", "1.4", "1.5")
		for j, e := range c.array(card["body"], at+".body", 1, 100) {
			c.cardElement(e, fmt.Sprintf("%s.body[%d]", at, j))
		}
		if acts, ok := card["actions"]; ok {
			for j, a := range c.array(acts, at+".actions", 1, 6) {
				aat := fmt.Sprintf("%s.actions[%d]", at, j)
				act := c.object(a, aat)
				c.oneOf(act["type"], aat+".type", "Action.OpenUrl")
				c.str(act["title"], aat+".title", 0)
				if u, err := url.Parse(c.str(act["url"], aat+".url", 0)); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
					c.fail("%s.url: want an absolute http(s) URL", aat)
				}
				c.text.WriteString(fmt.Sprint(act["url"]) + "\n")
			}
		}
	}
	return c.text.String(), c.problems
}

func (c *check) cardElement(v any, at string) {
	e := c.object(v, at)
	if e == nil {
		return
	}
	switch e["type"] {
	case "TextBlock":
		c.text.WriteString(cardUnescape(c.str(e["text"], at+".text", 0)) + "\n")
		c.boolean(e, "wrap", at)
		c.boolean(e, "isSubtle", at)
		for key, allowed := range map[string][]string{
			"size":    {"Default", "Small", "Medium", "Large", "ExtraLarge"},
			"weight":  {"Default", "Lighter", "Bolder"},
			"color":   {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"},
			"spacing": {"Default", "None", "Small", "Medium", "Large", "ExtraLarge", "Padding"},
		} {
			if v, ok := e[key]; ok {
				c.oneOf(v, at+"."+key, allowed...)
			}
		}
	case "FactSet":
		for i, f := range c.array(e["facts"], at+".facts", 1, 100) {
			fat := fmt.Sprintf("%s.facts[%d]", at, i)
			fact := c.object(f, fat)
			title, value := c.str(fact["title"], fat+".title", 0), c.str(fact["value"], fat+".value", 0)
			c.text.WriteString(cardUnescape(title) + ": " + cardUnescape(value) + "\n")
		}
	default:
		c.fail("%s.type: %v is not an element this card should use", at, e["type"])
	}
}

// cardUnescape reads Markdown backslash escapes back, as Teams shows them.
func cardUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var ceAttributeName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// CloudEvents 1.0 (github.com/cloudevents/spec: spec.md, the JSON event
// format and the HTTP binding's structured content mode).
func checkCloudEvent(h http.Header, body []byte, problems []string) (string, []string) {
	c := &check{problems: problems}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "application/cloudevents+json" {
		c.fail("Content-Type %q, want application/cloudevents+json (structured mode)", h.Get("Content-Type"))
	}
	ev := c.object(decode(body, c), "event")
	if ev == nil {
		return "", c.problems
	}
	for name, v := range ev {
		if name == "data" {
			continue
		}
		if !ceAttributeName.MatchString(name) {
			c.fail("attribute %q: names are 1 to 20 lower-case letters and digits", name)
		}
		if s, ok := v.(string); ok && strings.ContainsFunc(s, unicode.IsControl) {
			c.fail("attribute %s: control characters are not allowed in strings", name)
		}
	}
	c.oneOf(ev["specversion"], "specversion", "1.0")
	id := c.str(ev["id"], "id", 0)
	if u, err := url.Parse(c.str(ev["source"], "source", 0)); err != nil || u.String() == "" {
		c.fail("source: not a URI-reference: %v", err)
	}
	c.str(ev["type"], "type", 0)
	if s, ok := ev["subject"]; ok {
		c.text.WriteString(c.str(s, "subject", 0) + "\n")
	}
	if t, ok := ev["time"]; ok {
		if _, err := time.Parse(time.RFC3339Nano, c.str(t, "time", 0)); err != nil {
			c.fail("time: not RFC 3339: %v", err)
		}
	}
	if dct, ok := ev["datacontenttype"]; ok {
		c.oneOf(dct, "datacontenttype", "application/json")
	}
	data := c.object(ev["data"], "data")
	if data == nil {
		return c.text.String(), c.problems
	}
	if data["id"] != id {
		c.fail("data.id %v differs from the event id %q", data["id"], id)
	}
	c.text.WriteString(c.str(data["summary"], "data.summary", 0) + "\n")
	for _, key := range []string{"threshold", "utilization", "spend", "amount", "forecast"} {
		if _, ok := data[key].(float64); !ok && data[key] != nil {
			c.fail("data.%s: want a number or null, got %T", key, data[key])
		}
	}
	for _, key := range []string{"budget", "scope", "namespace", "team", "costCenter", "cluster", "currency"} {
		if v, ok := data[key]; ok {
			c.text.WriteString(key + ": " + c.str(v, "data."+key, 0) + "\n")
		}
	}
	for i, w := range c.array(data["topWorkloads"], "data.topWorkloads", 0, 100) {
		at := fmt.Sprintf("data.topWorkloads[%d]", i)
		wl := c.object(w, at)
		fmt.Fprintf(&c.text, "%v %v/%s %v\n", wl["kind"], wl["namespace"], c.str(wl["name"], at+".name", 0), wl["cost"])
	}
	return c.text.String(), c.problems
}

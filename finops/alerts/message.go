package alerts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// message is an alert laid out for people, before any one chat format:
// Slack and Teams render the same parts.
type message struct {
	title     string // "Budget payments-monthly crossed 80 %"
	summary   string // Alert.Summary
	facts     []fact // at most 10: a Slack section holds no more fields
	workloads []fact // "Deployment payments/api", "$2,010"
	omitted   int    // workloads not shown
	footer    string
	url       string
	over      bool // the budget is spent: shown as an error, not a warning
}

type fact struct{ label, value string }

// newMessage lays out a normalized alert.
func newMessage(a Alert, omitted int) message {
	m := message{
		title:   a.title(),
		summary: a.summary(),
		omitted: omitted,
		footer:  "Tollgate budget alert " + a.ID,
		url:     a.URL,
		over:    a.Utilization >= 100,
	}
	spend := money(a.Spend, a.Currency)
	if a.Amount > 0 {
		spend += " (" + percent(a.Utilization) + ")"
	}
	forecast := a.forecast()
	if forecast != "" && a.Amount > 0 {
		forecast += " (" + percent(a.Forecast/a.Amount*100) + ")"
	}
	for _, f := range []fact{
		{"Budget", a.Budget},
		{"Scope", a.Scope},
		{"Namespace", a.Namespace},
		{"Team", a.Team},
		{"Cost center", a.CostCenter},
		{"Spend to date", spend},
		{"Budget amount", money(a.Amount, a.Currency)},
		{"Forecast", forecast},
		{"Period", a.period()},
		{"Cluster", a.Cluster},
	} {
		if f.value != "" {
			m.facts = append(m.facts, f)
		}
	}
	for _, w := range a.TopWorkloads {
		m.workloads = append(m.workloads, fact{workloadLabel(w), money(w.Cost, a.Currency)})
	}
	return m
}

// workloadLabel is "Deployment payments/api", with what is known of it.
func workloadLabel(w Workload) string {
	name := w.Name
	if name == "" {
		name = "(unnamed)"
	}
	if w.Namespace != "" {
		name = w.Namespace + "/" + name
	}
	if w.Kind != "" {
		name = w.Kind + " " + name
	}
	return name
}

// more is the line that counts workloads left out.
func (m message) more() string {
	return fmt.Sprintf("…and %d more", m.omitted)
}

// payload is an encoded alert, ready to post.
type payload struct {
	body        []byte
	contentType string
}

// Upper bounds on an encoded payload. Teams documents about 28 KB for a
// message; Slack and CloudEvents receivers set none, but a budget alert
// has no reason to be large.
const (
	maxSlackBytes       = 40 << 10
	maxTeamsBytes       = 24 << 10
	maxCloudEventsBytes = 64 << 10
)

// encode formats a normalized alert for a channel type. Should the result
// be over the receiver's size limit, workloads are dropped (and counted)
// until it fits.
func encode(t ChannelType, a Alert, omitted int, now time.Time) (payload, error) {
	var (
		limit int
		build func(Alert, int) ([]byte, error)
		ct    = "application/json"
	)
	switch t {
	case Slack:
		limit, build = maxSlackBytes, slackPayload
	case Teams:
		limit, build = maxTeamsBytes, teamsPayload
	case CloudEvents:
		limit, ct = maxCloudEventsBytes, "application/cloudevents+json"
		build = func(a Alert, omitted int) ([]byte, error) { return cloudEvent(a, omitted, now) }
	default:
		return payload{}, fmt.Errorf("unknown channel type %q", t)
	}
	all := a.TopWorkloads
	for keep := len(all); ; keep /= 2 {
		a.TopWorkloads = all[:keep]
		body, err := build(a, omitted+len(all)-keep)
		if err != nil {
			return payload{}, fmt.Errorf("encoding the %s payload: %w", t, err)
		}
		if len(body) <= limit {
			return payload{body: body, contentType: ct}, nil
		}
		if keep == 0 {
			return payload{}, fmt.Errorf("the %s payload is %d bytes, more than %d", t, len(body), limit)
		}
	}
}

// marshal encodes JSON without escaping <, > and & for HTML: receivers
// read JSON, and the escapes would make names up to six times longer.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// number is an amount in JSON; NaN and infinities, which JSON cannot hold,
// are null.
type number float64

// MarshalJSON implements json.Marshaler.
func (n number) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(n))
}

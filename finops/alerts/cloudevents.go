package alerts

import (
	"math"
	"net/url"
	"strings"
	"time"
)

// EventType is the CloudEvents type of a budget alert, for receivers to
// filter on. Its data is versioned by this name: an incompatible change
// gets a new one.
const EventType = "dev.tollgate.budget.threshold.crossed"

// cloudEventEnvelope is a CloudEvent 1.0 in the JSON event format, sent in
// HTTP structured mode.
type cloudEventEnvelope struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            string    `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            eventData `json:"data"`
}

// eventData is the alert as a receiver's program reads it: the same facts
// as the chat messages, as numbers and RFC 3339 times, plus the summary.
type eventData struct {
	ID                  string          `json:"id"`
	Budget              string          `json:"budget,omitempty"`
	Scope               string          `json:"scope,omitempty"`
	Namespace           string          `json:"namespace,omitempty"`
	Team                string          `json:"team,omitempty"`
	CostCenter          string          `json:"costCenter,omitempty"`
	Cluster             string          `json:"cluster,omitempty"`
	Threshold           int             `json:"threshold"`
	Utilization         number          `json:"utilization"`
	Spend               number          `json:"spend"`
	Amount              number          `json:"amount"`
	Forecast            number          `json:"forecast"`
	Currency            string          `json:"currency,omitempty"`
	PeriodStart         string          `json:"periodStart,omitempty"`
	PeriodEnd           string          `json:"periodEnd,omitempty"`
	TopWorkloads        []eventWorkload `json:"topWorkloads"`
	TopWorkloadsOmitted int             `json:"topWorkloadsOmitted,omitempty"`
	URL                 string          `json:"url,omitempty"`
	Summary             string          `json:"summary"`
}

type eventWorkload struct {
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Cost      number `json:"cost"`
}

// cloudEvent is the alert as a structured-mode CloudEvent. Its source is
// /tollgate/<cluster>/budgets/<namespace>/<name>, so that source + id is unique as
// the specification asks, and its subject the namespace, for filtering.
func cloudEvent(a Alert, omitted int, now time.Time) ([]byte, error) {
	at := a.Time
	if at.IsZero() {
		at = now
	}
	source := "/tollgate"
	if a.Cluster != "" {
		source += "/" + url.PathEscape(a.Cluster)
	}
	source += "/budgets"
	for seg := range strings.SplitSeq(a.Budget, "/") {
		if seg != "" {
			source += "/" + url.PathEscape(seg)
		}
	}
	subject := a.Scope
	if a.Namespace != "" {
		subject = "namespaces/" + a.Namespace
	}
	data := eventData{
		ID:                  a.ID,
		Budget:              a.Budget,
		Scope:               a.Scope,
		Namespace:           a.Namespace,
		Team:                a.Team,
		CostCenter:          a.CostCenter,
		Cluster:             a.Cluster,
		Threshold:           a.Threshold,
		Utilization:         number(math.Round(a.Utilization*100) / 100),
		Spend:               number(a.Spend),
		Amount:              number(a.Amount),
		Forecast:            number(a.Forecast),
		Currency:            a.Currency,
		PeriodStart:         rfc3339(a.PeriodStart),
		PeriodEnd:           rfc3339(a.PeriodEnd),
		TopWorkloads:        make([]eventWorkload, len(a.TopWorkloads)),
		TopWorkloadsOmitted: omitted,
		URL:                 a.URL,
		Summary:             a.summary(),
	}
	for i, w := range a.TopWorkloads {
		data.TopWorkloads[i] = eventWorkload{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, Cost: number(w.Cost)}
	}
	return marshal(cloudEventEnvelope{
		SpecVersion:     "1.0",
		ID:              a.ID,
		Source:          source,
		Type:            EventType,
		Subject:         subject,
		Time:            rfc3339(at),
		DataContentType: "application/json",
		Data:            data,
	})
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

package alerts

import (
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// routeProblem is how each problem of a routes document begins: the field
// it is at.
var routeProblem = regexp.MustCompile(`^(default: |channels\["(?:[^"\\]|\\.)*"\](\.type|\.urlSecret\.(namespace|name|key))?: )`)

// FuzzAlertRoutes reads any bytes as the --alert-routes document, as
// tollgate serve does, routes an alert by any channel annotation, and
// formats it for the channel chosen. Never a panic; each problem names its
// field; an alert always goes to a configured channel (the one its
// namespace names when configured, else the default, saying why in a
// bounded, printable note); its payload is JSON within the receiver's
// limit; and from valid-looking figures (finite, not negative) no amount
// or percentage reads as n/a, NaN, Inf or below zero.
// (Budget amounts are 0.0001 to 1e12, as ParseAmount and the CRD allow.)
func FuzzAlertRoutes(f *testing.F) {
	doc := `
default: platform-finops
channels:
  platform-finops:
    type: slack
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: platform-finops}
  payments-teams:
    type: teams
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: payments-teams}
  finops-events:
    type: cloudevents
    urlSecret: {namespace: tollgate-system, name: budget-webhooks, key: events}
`
	for _, ann := range []string{"", "payments-teams", " finops-events ", "nowhere", strings.Repeat("x", 300), "\x1b[31mred\u202e"} {
		f.Add([]byte(doc), ann, "payments", 4120.0, 5000.0, 5630.0, 80)
	}
	f.Add([]byte(doc), "finops-events", "", 0.0, 0.0, 0.0, 100)
	f.Add([]byte(doc), "payments-teams", "ns", 1e300, 1e-300, math.MaxFloat64, 50)
	for _, bad := range []string{
		"", "default: x\n", "default: a\nchannels: {a: {type: email}}\n", "channels: {'': {type: slack}}\n",
		"default: a\nchannels: {a: {type: slack, urlSecret: {name: s}}}\n", "default: a\nextra: 1\n", "[",
	} {
		f.Add([]byte(bad), "", "ns", 1.0, 2.0, 3.0, 50)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc []byte, annotation, namespace string, spend, amount, forecast float64, threshold int) {
		var r Routes
		if err := yaml.UnmarshalStrict(doc, &r); err != nil {
			return // the YAML decoder's own message, with its line
		}
		if err := r.Validate(); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !routeProblem.MatchString(line) {
					t.Fatalf("problem does not name its field: %q", line)
				}
			}
			return
		}
		rt := r.route([]map[string]string{{ChannelAnnotation: annotation}, {ChannelAnnotation: "payments-teams"}})
		if _, ok := r.Channels[rt.name]; !ok {
			t.Fatalf("routed to %q, which is not configured", rt.name)
		}
		if want := strings.TrimSpace(annotation); want != "" {
			if _, ok := r.Channels[want]; ok && rt.name != want {
				t.Fatalf("annotation names configured channel %q, routed to %q", want, rt.name)
			}
		}
		if rt.note != "" && (!utf8.ValidString(rt.note) || strings.ContainsFunc(rt.note, unsafeRune) || len(rt.note) > 2*maxName+len(r.Default)+200) {
			t.Fatalf("note is not bounded, printable text: %q", rt.note)
		}
		valid := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
		start, end := now.AddDate(0, 0, -20), now.AddDate(0, 0, 10)
		a := Alert{
			ID: "b-uid/2026-11/80", Budget: namespace + "/shop", Namespace: namespace, Threshold: threshold,
			Spend: spend, Amount: amount, Forecast: forecast, Currency: "USD", PeriodStart: start, PeriodEnd: end,
			TopWorkloads: []Workload{{Kind: "Deployment", Namespace: namespace, Name: "web", Cost: spend / 2}},
		}
		norm, omitted := a.normalized()
		p, err := encode(rt.ch.Type, norm, omitted, now)
		if err != nil {
			t.Fatalf("encoding for %s: %v", rt.ch.Type, err)
		}
		if !json.Valid(p.body) {
			t.Fatalf("%s payload is not JSON: %s", rt.ch.Type, p.body)
		}
		// Valid-looking figures are what a Budget allows and a scanner
		// tallies: an amount of 0 or 0.0001 to 1e12, spend and forecast
		// finite and not negative.
		if !valid(spend) || !valid(amount) || !valid(forecast) || threshold < 1 || threshold > 1000 ||
			amount > 1e12 || (amount > 0 && amount < 1e-4) || spend > 1e15 || forecast > 1e15 {
			return
		}
		summary := a.Summary()
		for _, bad := range []string{"n/a", "NaN", "Inf", "-"} {
			if strings.Contains(strings.ReplaceAll(summary, a.Budget, ""), bad) {
				t.Fatalf("summary of valid figures holds %q: %s", bad, summary)
			}
		}
		if strings.Contains(string(p.body), "null") && rt.ch.Type == CloudEvents {
			t.Fatalf("an amount of valid figures is null in the event: %s", p.body)
		}
	})
}

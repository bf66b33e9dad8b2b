// Package alerts delivers budget alerts. When the FinOps scanner finds a
// budget past one of its thresholds it hands an Alert to a Notifier, which
// picks the team's channel from an annotation on its Namespace (or Budget),
// reads that channel's webhook URL from a Secret, formats the alert for
// Slack (Block Kit), Microsoft Teams (an Adaptive Card posted to a workflow
// webhook) or a CloudEvents 1.0 receiver, and posts it with a timeout per
// attempt and retries with backoff.
//
// Every Deliver returns a Result that says where the alert went, how many
// attempts it took and, when it did not arrive, why: nothing is dropped
// silently. Webhook URLs are secrets (whoever holds one can post to the
// channel): no error, log or Result shows more of one than its scheme and
// host.
//
// Deduplication is the caller's: a threshold fires once per period because
// the scanner records what fired in the Budget's status, keyed by Alert.ID,
// which is also the CloudEvents id a receiver can deduplicate on.
package alerts

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/finops"
)

// Alert is one budget threshold crossed, with what a team needs to act on
// it: who spends, how much against what, where the period will end, and
// which workloads spend most.
type Alert struct {
	// ID identifies this crossing, for example the Budget's UID, the
	// period start and the threshold. It is the scanner's idempotency key
	// and the CloudEvents id, and chat messages show it so that a repeat
	// can be recognised. Required: at most 512 bytes, no control
	// characters.
	ID string
	// Budget names the Budget object: its name, or namespace/name.
	Budget string
	// Scope says what the budget covers in words a team reads, and begins
	// the message: "namespace payments", or "team=payments" for a label
	// selector. When empty the namespace, team or budget name stands in.
	Scope string
	// Namespace, Team and CostCenter name whose spend it is; any may be
	// empty (a team's budget spans namespaces).
	Namespace  string
	Team       string
	CostCenter string
	// Threshold is the percentage of the budget that was crossed (50, 80,
	// 100 by default).
	Threshold int
	// Spend is the spend so far this period, Amount the budget and
	// Forecast the spend expected by PeriodEnd, all in Currency. A
	// Forecast of zero or less is left out of messages as unknown.
	Spend    float64
	Amount   float64
	Forecast float64
	// Currency is the ISO 4217 code of the amounts ("USD"); empty prints
	// bare numbers.
	Currency string
	// PeriodStart and PeriodEnd bound the budget period. PeriodEnd is
	// exclusive: December 1 00:00 ends November, and messages say "by
	// Nov 30".
	PeriodStart time.Time
	PeriodEnd   time.Time
	// Utilization is Spend as a percentage of Amount (82.4); zero means
	// compute it from them.
	Utilization float64
	// TopWorkloads are the workloads that spent most this period. They
	// are shown most expensive first, at most MaxWorkloads of them, with
	// a count of the rest.
	TopWorkloads []Workload
	// Cluster names the cluster, in messages and in the CloudEvents
	// source.
	Cluster string
	// URL optionally links to the spend in a console; http or https.
	URL string
	// Time is when the threshold was crossed, the CloudEvents time; zero
	// means the time of delivery.
	Time time.Time
}

// Workload is one workload's spend this period, so that a team sees where
// the money goes without opening a dashboard.
type Workload struct {
	Kind      string  // Deployment, StatefulSet, CronJob, ...
	Namespace string  // the workload's namespace
	Name      string  // the workload's name
	Cost      float64 // spend this period, in the alert's currency
}

// MaxWorkloads is how many top workloads an alert shows; more make a chat
// message unreadable, and the rest are counted instead.
const MaxWorkloads = 10

// Limits on the alert's text, applied before formatting, so that a name
// from a cluster can never make a payload too large for its receiver.
const (
	maxIDBytes  = 512
	maxName     = 253 // a Kubernetes object name
	maxScope    = 512
	maxCurrency = 16
	maxURL      = 2048
)

// Validate reports what makes an alert undeliverable: no usable ID, or a
// console URL that is not an absolute http(s) URL. Every other field may
// be empty or odd; formatting copes.
func (a Alert) Validate() error {
	switch {
	case a.ID == "":
		return errors.New("alert ID is required: it is the idempotency key and the CloudEvents id")
	case len(a.ID) > maxIDBytes:
		return fmt.Errorf("alert ID is %d bytes, more than %d", len(a.ID), maxIDBytes)
	case !utf8.ValidString(a.ID) || strings.ContainsFunc(a.ID, unsafeRune):
		return errors.New("alert ID holds invalid UTF-8 or control characters")
	}
	if a.URL != "" {
		if _, err := consoleURL(a.URL); err != nil {
			return fmt.Errorf("alert URL: %w", err)
		}
	}
	return nil
}

// consoleURL checks a link that messages will carry.
func consoleURL(s string) (*url.URL, error) {
	if len(s) > maxURL {
		return nil, fmt.Errorf("longer than %d bytes", maxURL)
	}
	if strings.ContainsFunc(s, unsafeRune) || strings.ContainsAny(s, " \"<>|") {
		return nil, errors.New("holds spaces, control characters or one of \"<>|")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("must be an absolute http or https URL")
	}
	return u, nil
}

// normalized returns the alert with every string made safe to show and
// bounded, the utilization computed if missing, and the workloads sorted
// most expensive first and cut to MaxWorkloads; it also returns how many
// were cut.
func (a Alert) normalized() (Alert, int) {
	a.Budget = clean(a.Budget, maxScope)
	a.Scope = clean(a.Scope, maxScope)
	a.Namespace = clean(a.Namespace, maxName)
	a.Team = clean(a.Team, maxName)
	a.CostCenter = clean(a.CostCenter, maxName)
	a.Currency = strings.ToUpper(clean(a.Currency, maxCurrency))
	a.Cluster = clean(a.Cluster, maxName)
	if a.Utilization == 0 && a.Amount > 0 {
		a.Utilization = a.Spend / a.Amount * 100
	}
	ws := make([]Workload, len(a.TopWorkloads))
	copy(ws, a.TopWorkloads)
	slices.SortStableFunc(ws, func(x, y Workload) int {
		return cmp.Compare(y.Cost, x.Cost) // most first; cmp puts NaN last here
	})
	omitted := 0
	if len(ws) > MaxWorkloads {
		omitted = len(ws) - MaxWorkloads
		ws = ws[:MaxWorkloads]
	}
	for i := range ws {
		ws[i].Kind = clean(ws[i].Kind, maxName)
		ws[i].Namespace = clean(ws[i].Namespace, maxName)
		ws[i].Name = clean(ws[i].Name, maxName)
	}
	a.TopWorkloads = ws
	return a, omitted
}

// clean makes a name from the cluster safe to show anywhere: invalid UTF-8
// becomes U+FFFD, control, bidirectional-override and non-characters
// (which CloudEvents forbids in strings) become spaces, and the result is
// cut to max characters with an ellipsis.
func clean(s string, maxRunes int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), maxRunes)
}

// unsafeRune reports characters that have no business in a name shown to
// people: controls, bidirectional overrides (which can make text read
// backwards) and Unicode non-characters.
func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return true
	}
	return false
}

// truncate cuts s to at most max characters, the last an ellipsis when
// anything was cut.
func truncate(s string, maxRunes int) string {
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	if maxRunes <= 0 {
		return ""
	}
	n := 0
	for i := range s {
		if n == maxRunes-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// Summary is the alert in one sentence, as a team channel shows it:
// "namespace payments is at 82 % of its monthly budget: $4,120 of $5,000,
// forecast $5,630 by Nov 30." The scanner can reuse it, in a Budget
// condition or an Event, so that every place says the same thing.
func (a Alert) Summary() string {
	a, _ = a.normalized()
	return a.summary()
}

func (a Alert) summary() string {
	var b strings.Builder
	b.WriteString(a.who())
	b.WriteString(" is at ")
	b.WriteString(percent(a.Utilization))
	b.WriteString(" of its ")
	if w := periodWord(a.PeriodStart, a.PeriodEnd); w != "" {
		b.WriteString(w)
		b.WriteString(" ")
	}
	b.WriteString("budget: ")
	b.WriteString(money(a.Spend, a.Currency))
	b.WriteString(" of ")
	b.WriteString(money(a.Amount, a.Currency))
	if f := a.forecast(); f != "" {
		b.WriteString(", forecast ")
		b.WriteString(f)
	}
	b.WriteString(".")
	return b.String()
}

// forecast is "$5,630 by Nov 30", or empty when unknown.
func (a Alert) forecast() string {
	if !(a.Forecast > 0) || math.IsInf(a.Forecast, 0) {
		return ""
	}
	s := money(a.Forecast, a.Currency)
	if !a.PeriodEnd.IsZero() {
		s += " by " + lastDay(a.PeriodEnd).Format("Jan 2")
	}
	return s
}

// who begins the summary: the scope, else whatever names the spender.
func (a Alert) who() string {
	switch {
	case a.Scope != "":
		return a.Scope
	case a.Namespace != "":
		return "namespace " + a.Namespace
	case a.Team != "":
		return "team " + a.Team
	case a.Budget != "":
		return "budget " + a.Budget
	}
	return "a budget"
}

// title heads a chat message: which budget, which threshold.
func (a Alert) title() string {
	switch who := a.who(); {
	case a.Budget != "":
		return fmt.Sprintf("Budget %s crossed %d %%", a.Budget, a.Threshold)
	case who != "a budget":
		return fmt.Sprintf("Budget of %s crossed %d %%", who, a.Threshold)
	}
	return fmt.Sprintf("A budget crossed %d %%", a.Threshold)
}

// period is "Nov 1 – Nov 30, 2025", or empty when unknown.
func (a Alert) period() string {
	if a.PeriodStart.IsZero() || a.PeriodEnd.IsZero() {
		return ""
	}
	end := lastDay(a.PeriodEnd)
	return a.PeriodStart.Format("Jan 2") + " – " + end.Format("Jan 2, 2006")
}

// lastDay is the last instant inside a period that ends (exclusively) at
// end.
func lastDay(end time.Time) time.Time { return end.Add(-time.Nanosecond) }

// periodWord names a budget period by its length: "monthly" for 28 to 31
// days, and so on; empty when it is none of the usual ones.
func periodWord(start, end time.Time) string {
	if start.IsZero() || end.IsZero() {
		return ""
	}
	days := end.Sub(start).Hours() / 24
	switch {
	case days > 0.9 && days < 1.1:
		return "daily"
	case days > 6.9 && days < 7.1:
		return "weekly"
	case days > 27.9 && days < 31.1:
		return "monthly"
	case days > 88.9 && days < 92.1:
		return "quarterly"
	case days > 364.9 && days < 366.1:
		return "yearly"
	}
	return ""
}

// percent shows a utilization rounded down, so that 99.7 % never reads as
// a budget used up.
func percent(p float64) string {
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return "n/a %"
	}
	return strconv.FormatFloat(math.Floor(p), 'f', 0, 64) + " %"
}

// money shows an amount the way a person reads a bill: whole units from
// 100 up, cents below ("$4,120", "$12.40").
func money(v float64, currency string) string { return finops.Money(v, currency, finops.WholeFrom100) }

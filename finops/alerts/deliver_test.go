package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden payloads in testdata")

// The secret parts of the test webhook URLs: none may show in an error.
const (
	slackPath  = "/services/T0001/B0002/s3cr3tSlackT0ken"
	teamsPath  = "/workflows/4a1b/triggers/manual/paths/invoke?api-version=1&sig=SIGs3cr3tTeamsSIG"
	eventsPath = "/events/budget?token=t0k3nEventsSecret"
)

var secretParts = []string{"s3cr3t", "T0001/B0002", "SIGs3cr3t", "t0k3nEvents", "paths/invoke"}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, part := range secretParts {
		if strings.Contains(s, part) {
			t.Errorf("%s shows part of a webhook URL (%q): %s", what, part, s)
		}
	}
}

// testAlert is payments' November budget at 82 %, changed by opts.
func testAlert(opts ...func(*Alert)) Alert {
	a := Alert{
		ID:          "3f9c2b7e-0b1d-4c55-9e0a-5a8e1c2d4f60/2025-11-01/80",
		Budget:      "payments-monthly",
		Scope:       "namespace payments",
		Namespace:   "payments",
		Team:        "payments",
		CostCenter:  "CC-1042",
		Threshold:   80,
		Spend:       4120,
		Amount:      5000,
		Forecast:    5630,
		Currency:    "USD",
		PeriodStart: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC),
		PeriodEnd:   time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC),
		TopWorkloads: []Workload{
			{Kind: "StatefulSet", Namespace: "payments", Name: "ledger-db", Cost: 1240},
			{Kind: "Deployment", Namespace: "payments", Name: "checkout-api", Cost: 2010.5},
			{Kind: "CronJob", Namespace: "payments", Name: "nightly-reconcile", Cost: 12.4},
		},
		Cluster: "prod-eu-1",
		URL:     "https://console.example.com/budgets/payments-monthly?period=2025-11&view=spend",
		Time:    time.Date(2025, 11, 21, 14, 3, 0, 0, time.UTC),
	}
	for _, o := range opts {
		o(&a)
	}
	return a
}

// harness is a Notifier wired to one receiver per channel.
type harness struct {
	n         *Notifier
	receivers map[string]*receiver
	results   []Result
	mu        sync.Mutex
}

type channelSpec struct {
	name    string
	typ     ChannelType
	path    string
	answers []answer
}

// newHarness starts the receivers and a Notifier with fast retries; the
// first channel is the default, and edit changes the options.
func newHarness(t *testing.T, specs []channelSpec, edit ...func(*Options)) *harness {
	t.Helper()
	h := &harness{receivers: map[string]*receiver{}}
	secrets := map[string]string{}
	routes := Routes{Default: specs[0].name, Channels: map[string]Channel{}}
	for _, s := range specs {
		r := newReceiver(t, s.typ, s.path, s.answers...)
		h.receivers[s.name] = r
		routes.Channels[s.name] = Channel{Type: s.typ, URLSecret: SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: s.name}}
		secrets["tollgate-system/budget-webhooks/"+s.name] = r.url() + "\n"
	}
	opts := Options{
		Routes:         routes,
		Secrets:        mapSecrets(secrets),
		AttemptTimeout: 5 * time.Second,
		Attempts:       5,
		MinBackoff:     time.Millisecond,
		MaxBackoff:     4 * time.Millisecond,
		Observer: ObserverFunc(func(r Result) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.results = append(h.results, r)
		}),
	}
	for _, e := range edit {
		e(&opts)
	}
	n, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.n = n
	return h
}

func mapSecrets(m map[string]string) SecretReader {
	return func(_ context.Context, namespace, name, key string) ([]byte, error) {
		v, ok := m[namespace+"/"+name+"/"+key]
		if !ok {
			return nil, fmt.Errorf(`secrets %q not found`, name)
		}
		return []byte(v), nil
	}
}

func single(typ ChannelType, answers ...answer) []channelSpec {
	path := map[ChannelType]string{Slack: slackPath, Teams: teamsPath, CloudEvents: eventsPath}[typ]
	return []channelSpec{{name: "platform-" + string(typ), typ: typ, path: path, answers: answers}}
}

// TestDeliverFormats delivers the alert to each kind of receiver, which
// checks the payload against the vendor's format, and compares it with
// its golden file (go test -update rewrites them).
func TestDeliverFormats(t *testing.T) {
	for _, typ := range []ChannelType{Slack, Teams, CloudEvents} {
		t.Run(string(typ), func(t *testing.T) {
			h := newHarness(t, single(typ))
			res := h.n.Deliver(t.Context(), testAlert())
			if !res.Delivered || res.Err != nil || res.Attempts != 1 {
				t.Fatalf("Deliver = %+v, want delivered at the first attempt", res)
			}
			if res.Type != typ || res.Endpoint != h.receivers["platform-"+string(typ)].srv.URL {
				t.Errorf("Type, Endpoint = %s, %s", res.Type, res.Endpoint)
			}
			bodies, texts := h.receivers["platform-"+string(typ)].received()
			if len(bodies) != 1 {
				t.Fatalf("receiver got %d valid payloads, want 1", len(bodies))
			}
			for _, want := range []string{
				"namespace payments is at 82 % of its monthly budget: $4,120 of $5,000, forecast $5,630 by Nov 30.",
				"payments", "CC-1042", "checkout-api", "ledger-db", "nightly-reconcile", "prod-eu-1",
			} {
				if !strings.Contains(texts[0], want) {
					t.Errorf("the payload does not say %q; it reads:\n%s", want, texts[0])
				}
			}
			if typ != CloudEvents {
				for _, want := range []string{"Team: payments", "Namespace: payments", "Spend to date: $4,120 (82 %)", "Budget amount: $5,000",
					"Forecast: $5,630 by Nov 30 (112 %)", "$2,011", "Budget payments-monthly crossed 80 %", testAlert().ID} {
					if !strings.Contains(strings.ReplaceAll(texts[0], "*\n", ": "), want) {
						t.Errorf("the message does not say %q; it reads:\n%s", want, texts[0])
					}
				}
				if i, j := strings.Index(texts[0], "checkout-api"), strings.Index(texts[0], "ledger-db"); i > j {
					t.Errorf("checkout-api ($2,011) is listed after ledger-db ($1,240)")
				}
			}
			golden(t, filepath.Join("testdata", string(typ)+".golden.json"), bodies[0])
		})
	}
}

// golden compares JSON with a file, indented for review.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, got, "", "  "); err != nil {
		t.Fatalf("indenting: %v", err)
	}
	b.WriteByte('\n')
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("payload differs from %s (-want +got):\n%s", path, diff)
	}
}

// TestRetries covers the receivers' failures: which are retried, how
// many attempts they take, and what the Result says.
func TestRetries(t *testing.T) {
	fail500 := answer{status: 500, body: "internal error"}
	tests := []struct {
		name      string
		answers   []answer
		attempts  int // option; 0 keeps the harness's 5
		want      Result
		wantCalls int
		wantErr   string
	}{{
		name:      "500 twice then recovers",
		answers:   []answer{fail500, fail500},
		want:      Result{Attempts: 3, Delivered: true, StatusCode: 200},
		wantCalls: 3,
	}, {
		name:      "502 503 504 then recovers",
		answers:   []answer{{status: 502}, {status: 503}, {status: 504}},
		want:      Result{Attempts: 4, Delivered: true, StatusCode: 200},
		wantCalls: 4,
	}, {
		name:      "500 until attempts are spent",
		answers:   []answer{fail500, fail500, fail500},
		attempts:  3,
		want:      Result{Attempts: 3, StatusCode: 500},
		wantCalls: 3,
		wantErr:   "answered 500 Internal Server Error: internal error",
	}, {
		name:      "408 is retried",
		answers:   []answer{{status: 408}},
		want:      Result{Attempts: 2, Delivered: true, StatusCode: 200},
		wantCalls: 2,
	}, {
		name:      "400 is not retried",
		answers:   []answer{{status: 400, body: "invalid_blocks"}},
		want:      Result{Attempts: 1, StatusCode: 400, Permanent: true},
		wantCalls: 1,
		wantErr:   "answered 400 Bad Request: invalid_blocks",
	}, {
		name:      "404 no_service is not retried",
		answers:   []answer{{status: 404, body: "no_service"}},
		want:      Result{Attempts: 1, StatusCode: 404, Permanent: true},
		wantCalls: 1,
		wantErr:   "answered 404 Not Found: no_service",
	}, {
		name:      "410 channel_is_archived is not retried",
		answers:   []answer{{status: 410, body: "channel_is_archived"}},
		want:      Result{Attempts: 1, StatusCode: 410, Permanent: true},
		wantCalls: 1,
		wantErr:   "channel_is_archived",
	}, {
		name:      "a redirect is not followed",
		answers:   []answer{{status: 301, header: map[string]string{"Location": "https://elsewhere.example/x"}}},
		want:      Result{Attempts: 1, StatusCode: 301, Permanent: true},
		wantCalls: 1,
		wantErr:   "redirects are not followed",
	}, {
		name:      "429 with Retry-After",
		answers:   []answer{{status: 429, header: map[string]string{"Retry-After": "1"}, body: "rate_limited"}},
		want:      Result{Attempts: 2, Delivered: true, StatusCode: 200, Backoff: time.Second},
		wantCalls: 2,
	}, {
		name:      "429 asking for longer than allowed",
		answers:   []answer{{status: 429, header: map[string]string{"Retry-After": "3600"}}},
		want:      Result{Attempts: 1, StatusCode: 429, RetryAfter: time.Hour},
		wantCalls: 1,
		wantErr:   "asked to wait 1h0m0s, longer than the 1m0s allowed",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, single(Slack, tc.answers...), func(o *Options) {
				if tc.attempts > 0 {
					o.Attempts = tc.attempts
				}
			})
			r := h.receivers["platform-slack"]
			res := h.n.Deliver(t.Context(), testAlert())
			if tc.want.Backoff == 0 {
				res.Backoff = 0 // jittered: compared only when Retry-After set it
			}
			tc.want.AlertID, tc.want.Channel, tc.want.Type, tc.want.Endpoint = testAlert().ID, "platform-slack", Slack, r.srv.URL
			tc.want.Note = `no tollgate.dev/budget-channel annotation; sent to the default channel "platform-slack"`
			if diff := cmp.Diff(tc.want, res, cmpResult); diff != "" {
				t.Errorf("Result (-want +got):\n%s", diff)
			}
			if got := r.calls(); got != tc.wantCalls {
				t.Errorf("receiver answered %d requests, want %d", got, tc.wantCalls)
			}
			checkErr(t, res.Err, tc.wantErr)
		})
	}
}

// cmpResult compares Results without their errors, checked apart.
var cmpResult = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Err" }, cmp.Ignore())

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("Err = %v, want none", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("Err = %v, want one saying %q", err, want)
	}
	if err != nil {
		assertNoSecret(t, "Err", err.Error())
	}
}

// TestHangingReceiver: a receiver that never answers costs one attempt
// timeout per attempt, then a failure saying so.
func TestHangingReceiver(t *testing.T) {
	hang := answer{hang: true}
	h := newHarness(t, single(Teams, hang, hang, hang), func(o *Options) {
		o.AttemptTimeout = 50 * time.Millisecond
		o.Attempts = 3
	})
	res := h.n.Deliver(t.Context(), testAlert())
	if res.Delivered || res.Attempts != 3 || res.Permanent {
		t.Errorf("Deliver = %+v, want 3 attempts, undelivered, not permanent", res)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("Err = %v, want context.DeadlineExceeded", res.Err)
	}
	checkErr(t, res.Err, "no answer from "+h.receivers["platform-teams"].srv.URL+" within 50ms")
}

// TestContextCancelledDuringBackoff: cancelling stops the wait for the
// next attempt at once, and the Result says so.
func TestContextCancelledDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	h := newHarness(t, single(CloudEvents, answer{status: 503}), func(o *Options) {
		o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour // only cancellation ends this wait
		// The record logged as the wait begins cancels it.
		o.Logger = slog.New(cancelHandler{cancel})
	})
	res := h.n.Deliver(ctx, testAlert())
	if res.Delivered || res.Attempts != 1 || res.StatusCode != 503 {
		t.Errorf("Deliver = %+v, want one failed attempt", res)
	}
	if !errors.Is(res.Err, context.Canceled) {
		t.Errorf("Err = %v, want context.Canceled", res.Err)
	}
	checkErr(t, res.Err, "answered 503")
}

// cancelHandler cancels a context at the first debug record: the one
// Deliver logs before it waits to retry.
type cancelHandler struct{ cancel context.CancelFunc }

func (h cancelHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelHandler) Handle(context.Context, slog.Record) error {
	h.cancel()
	return nil
}
func (h cancelHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelHandler) WithGroup(string) slog.Handler      { return h }

// TestRouting follows the annotation to its channel, and says why when it
// falls back to the default.
func TestRouting(t *testing.T) {
	specs := []channelSpec{
		{name: "platform-finops", typ: Slack, path: slackPath},
		{name: "payments-teams", typ: Teams, path: teamsPath},
		{name: "finops-events", typ: CloudEvents, path: eventsPath},
	}
	ns := func(channel string) map[string]string {
		return map[string]string{"team": "payments", ChannelAnnotation: channel}
	}
	tests := []struct {
		name        string
		annotations []map[string]string
		wantChannel string
		wantNote    string
	}{{
		name:        "namespace names a channel",
		annotations: []map[string]string{ns("payments-teams")},
		wantChannel: "payments-teams",
	}, {
		name:        "budget's annotation wins over the namespace's",
		annotations: []map[string]string{{ChannelAnnotation: "finops-events"}, ns("payments-teams")},
		wantChannel: "finops-events",
	}, {
		name:        "budget names none, namespace does",
		annotations: []map[string]string{nil, ns(" payments-teams ")},
		wantChannel: "payments-teams",
	}, {
		name:        "no annotation",
		annotations: []map[string]string{{"team": "payments"}},
		wantChannel: "platform-finops",
		wantNote:    `no tollgate.dev/budget-channel annotation; sent to the default channel "platform-finops"`,
	}, {
		name:        "no annotations at all",
		wantChannel: "platform-finops",
		wantNote:    `no tollgate.dev/budget-channel annotation; sent to the default channel "platform-finops"`,
	}, {
		name:        "unknown channel",
		annotations: []map[string]string{ns("payments-slack")},
		wantChannel: "platform-finops",
		wantNote:    `channel "payments-slack" named by tollgate.dev/budget-channel is not configured; sent to the default channel "platform-finops"`,
	}, {
		name:        "unknown channel with control characters",
		annotations: []map[string]string{ns("evil\n<!channel>")},
		wantChannel: "platform-finops",
		wantNote:    `channel "evil <!channel>" named by tollgate.dev/budget-channel is not configured; sent to the default channel "platform-finops"`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, specs)
			res := h.n.Deliver(t.Context(), testAlert(), tc.annotations...)
			if !res.Delivered {
				t.Fatalf("Deliver = %+v, want delivered", res)
			}
			if res.Channel != tc.wantChannel || res.Note != tc.wantNote {
				t.Errorf("Channel, Note = %q, %q\nwant %q, %q", res.Channel, res.Note, tc.wantChannel, tc.wantNote)
			}
			for name, r := range h.receivers {
				want := 0
				if name == tc.wantChannel {
					want = 1
				}
				if got := r.calls(); got != want {
					t.Errorf("channel %s received %d alerts, want %d", name, got, want)
				}
			}
		})
	}
}

// TestSecrets: a Secret that cannot be read, or holds no usable URL, is an
// error naming the channel and the Secret, and never the URL.
func TestSecrets(t *testing.T) {
	tests := []struct {
		name          string
		secret        string // "" means the read fails
		wantErr       string
		wantPermanent bool
	}{{
		name:    "read fails",
		wantErr: `channel "platform-slack": reading the webhook URL from Secret tollgate-system/budget-webhooks key "platform-slack": secrets "budget-webhooks" not found`,
	}, {
		name:          "empty",
		secret:        " \n",
		wantErr:       `channel "platform-slack": Secret tollgate-system/budget-webhooks key "platform-slack" does not hold a usable webhook URL: it is empty`,
		wantPermanent: true,
	}, {
		name:          "no scheme",
		secret:        "hooks.slack.com" + slackPath,
		wantErr:       "the scheme must be https (or http)",
		wantPermanent: true,
	}, {
		name:          "does not parse",
		secret:        "https://hooks.slack.com" + slackPath + "%zz",
		wantErr:       "it does not parse as a URL",
		wantPermanent: true,
	}, {
		name:          "user information",
		secret:        "https://user:s3cr3tPass@hooks.slack.com" + slackPath,
		wantErr:       "it must not hold user information",
		wantPermanent: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secrets := map[string]string{}
			if tc.secret != "" {
				secrets["tollgate-system/budget-webhooks/platform-slack"] = tc.secret
			}
			h := newHarness(t, single(Slack), func(o *Options) { o.Secrets = mapSecrets(secrets) })
			res := h.n.Deliver(t.Context(), testAlert())
			if res.Delivered || res.Attempts != 0 || res.Permanent != tc.wantPermanent {
				t.Errorf("Deliver = %+v, want no attempt, Permanent %v", res, tc.wantPermanent)
			}
			checkErr(t, res.Err, tc.wantErr)
			if got := h.receivers["platform-slack"].calls(); got != 0 {
				t.Errorf("receiver got %d requests, want none", got)
			}
		})
	}
}

// TestRedaction: errors carry the webhook's scheme and host, never its
// path or query, even when a receiver echoes them back.
func TestRedaction(t *testing.T) {
	t.Run("answer echoes the URL", func(t *testing.T) {
		h := newHarness(t, single(Teams))
		r := h.receivers["platform-teams"]
		r.mu.Lock()
		r.answers = []answer{{status: 400, body: `{"error":{"code":"InvalidRequest","message":"bad request to ` + r.url() + ` (sig SIGs3cr3tTeamsSIG)"}}`}}
		r.mu.Unlock()
		res := h.n.Deliver(t.Context(), testAlert())
		checkErr(t, res.Err, r.srv.URL+" answered 400 Bad Request")
		if !strings.Contains(res.Err.Error(), "[redacted]") {
			t.Errorf("Err = %v, want the echoed URL replaced by [redacted]", res.Err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		h := newHarness(t, single(Slack), func(o *Options) { o.Attempts = 2 })
		r := h.receivers["platform-slack"]
		r.srv.Close()
		res := h.n.Deliver(t.Context(), testAlert())
		if res.Delivered || res.Attempts != 2 || res.Permanent {
			t.Errorf("Deliver = %+v, want 2 attempts, undelivered, retryable", res)
		}
		checkErr(t, res.Err, r.srv.URL)
		assertNoSecret(t, "Result", fmt.Sprintf("%+v %#v", res, res.Err))
	})
}

// TestAdversarialAlerts: whatever a cluster puts in names and lists, each
// receiver gets a valid payload within its limits.
func TestAdversarialAlerts(t *testing.T) {
	many := make([]Workload, 10000)
	for i := range many {
		many[i] = Workload{Kind: "Deployment", Namespace: "ns", Name: fmt.Sprintf("w-%05d", i), Cost: float64(i)}
	}
	long := strings.Repeat("<!channel> *bold* _it_ [x](https://evil.example) & ", 200)
	tests := []struct {
		name string
		edit func(*Alert)
		want []string // in every format's text
		deny []string // in no format's text
	}{{
		name: "10,000 workloads",
		edit: func(a *Alert) { a.TopWorkloads = many },
		want: []string{"w-09999", "w-09990"},
		deny: []string{"w-09989", "w-00000"},
	}, {
		name: "markup and mentions in names",
		edit: func(a *Alert) {
			a.Budget = "<!channel> & <https://evil.example|click>"
			a.Scope = "team=*payments* _now_ `code` ~strike~ [link](https://evil.example)"
			a.Team = "<@U123>"
			a.TopWorkloads = []Workload{{Kind: "Deployment", Namespace: "a&b", Name: "x<y>z", Cost: 1}, {Name: "- list", Cost: 0.5}, {Name: "1. item", Cost: 0.25}}
		},
		want: []string{"<!channel> & <https://evil.example|click>", "*payments* _now_", "<@U123>", "a&b/x<y>z", "- list", "1. item"},
	}, {
		name: "non-ASCII",
		edit: func(a *Alert) {
			a.Scope, a.Team, a.Currency = "namespace zahlungen-ü", "支払い", "EUR"
			a.TopWorkloads = []Workload{{Kind: "Deployment", Namespace: "zahlungen-ü", Name: "kasse-🧾", Cost: 1234.5}}
		},
		want: []string{"zahlungen-ü", "支払い", "kasse-🧾"},
	}, {
		name: "huge strings",
		edit: func(a *Alert) {
			a.Budget, a.Scope, a.Team, a.Cluster = long, long, long, long
			for i := range 20 {
				a.TopWorkloads = append(a.TopWorkloads, Workload{Kind: long, Namespace: long, Name: long, Cost: float64(i)})
			}
		},
	}, {
		name: "control and bidi characters",
		edit: func(a *Alert) {
			a.Team = "pay\x00ments\u202e\n\t\x7f\xff"
			a.Namespace = "\u2066payments\uFFFE"
		},
		want: []string{"pay ments", "payments"},
	}, {
		name: "empty fields",
		edit: func(a *Alert) { *a = Alert{ID: "only-an-id"} },
		want: []string{"a budget is at 0 % of its budget: 0 of 0."},
	}, {
		name: "numbers that are not numbers",
		edit: func(a *Alert) {
			a.Spend, a.Amount, a.Forecast, a.Utilization = 1e300, 0, nanValue(), infValue()
			a.TopWorkloads = []Workload{{Name: "nan", Cost: nanValue()}, {Name: "neg", Cost: -5}, {Name: "big", Cost: 1e18}}
		},
		want: []string{"is at n/a %", "$1e+300"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range []ChannelType{Slack, Teams, CloudEvents} {
				h := newHarness(t, single(typ))
				res := h.n.Deliver(t.Context(), testAlert(tc.edit))
				if !res.Delivered {
					t.Fatalf("%s: Deliver = %+v, want delivered", typ, res)
				}
				_, texts := h.receivers["platform-"+string(typ)].received()
				for _, w := range tc.want {
					if !strings.Contains(texts[0], w) {
						t.Errorf("%s: the payload does not say %q; it reads:\n%.3000s", typ, w, texts[0])
					}
				}
				for _, d := range tc.deny {
					if strings.Contains(texts[0], d) {
						t.Errorf("%s: the payload says %q", typ, d)
					}
				}
			}
		})
	}
}

func nanValue() float64 { var zero float64; return zero / zero }
func infValue() float64 { var zero float64; return 1 / zero }

// TestInvalidAlerts are refused before anything is sent, permanently.
func TestInvalidAlerts(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Alert)
		wantErr string
	}{
		{"no ID", func(a *Alert) { a.ID = "" }, "alert ID is required"},
		{"long ID", func(a *Alert) { a.ID = strings.Repeat("x", 513) }, "alert ID is 513 bytes, more than 512"},
		{"control character in ID", func(a *Alert) { a.ID = "a\nb" }, "control characters"},
		{"javascript URL", func(a *Alert) { a.URL = "javascript:alert(1)" }, "alert URL: must be an absolute http or https URL"},
		{"URL breaking Slack links", func(a *Alert) { a.URL = "https://x.example/a|b>" }, "alert URL: holds spaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, single(Slack))
			res := h.n.Deliver(t.Context(), testAlert(tc.edit))
			if res.Delivered || !res.Permanent || res.Attempts != 0 {
				t.Errorf("Deliver = %+v, want refused", res)
			}
			checkErr(t, res.Err, tc.wantErr)
		})
	}
}

// TestObserverAndMetrics: every Deliver is observed once, delivered or
// not, and counted by channel type.
func TestObserverAndMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	specs := []channelSpec{
		{name: "platform-finops", typ: Slack, path: slackPath, answers: []answer{{status: 500}}},
		{name: "payments-teams", typ: Teams, path: teamsPath, answers: []answer{{status: 403, body: "forbidden"}}},
	}
	h := newHarness(t, specs, func(o *Options) {
		inner := o.Observer
		o.Observer = ObserverFunc(func(r Result) { inner.ObserveDelivery(r); m.ObserveDelivery(r) })
	})
	h.n.Deliver(t.Context(), testAlert())                                                                                     // slack: 500, then delivered
	h.n.Deliver(t.Context(), testAlert(), map[string]string{ChannelAnnotation: "payments-teams"})                             // teams: 403
	h.n.Deliver(t.Context(), testAlert(func(a *Alert) { a.ID = "" }), map[string]string{ChannelAnnotation: "payments-teams"}) // invalid
	if len(h.results) != 3 {
		t.Fatalf("observed %d results, want 3", len(h.results))
	}
	want := `
# HELP tollgate_budget_alert_deliveries_total Budget alert deliveries by channel type and result (delivered, failed), and whether the failure was permanent.
# TYPE tollgate_budget_alert_deliveries_total counter
tollgate_budget_alert_deliveries_total{permanent="false",result="delivered",type="slack"} 1
tollgate_budget_alert_deliveries_total{permanent="true",result="failed",type="teams"} 2
# HELP tollgate_budget_alert_attempts_total POSTs made to deliver budget alerts, by channel type; above the alerts count, receivers are failing and being retried.
# TYPE tollgate_budget_alert_attempts_total counter
tollgate_budget_alert_attempts_total{type="slack"} 2
tollgate_budget_alert_attempts_total{type="teams"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestConcurrentDelivery: one Notifier serves many goroutines (run with
// -race).
func TestConcurrentDelivery(t *testing.T) {
	h := newHarness(t, single(Slack))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			res := h.n.Deliver(t.Context(), testAlert(func(a *Alert) { a.ID = fmt.Sprint("alert-", i) }))
			if !res.Delivered {
				t.Errorf("alert %d: %+v", i, res)
			}
		})
	}
	wg.Wait()
	if got := h.receivers["platform-slack"].calls(); got != 20 {
		t.Errorf("receiver got %d alerts, want 20", got)
	}
}

// TestOptionsValidate names the field at fault.
func TestOptionsValidate(t *testing.T) {
	good := func() Options {
		return Options{
			Secrets: mapSecrets(nil),
			Routes: Routes{Default: "a", Channels: map[string]Channel{
				"a": {Type: Slack, URLSecret: SecretKeyRef{Namespace: "ns", Name: "s", Key: "k"}},
			}},
		}
	}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"valid", func(*Options) {}, ""},
		{"no secrets", func(o *Options) { o.Secrets = nil }, "Secrets is required"},
		{"negative timeout", func(o *Options) { o.AttemptTimeout = -1 }, "AttemptTimeout must not be negative"},
		{"min over max", func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Minute, time.Second }, "MinBackoff (1m0s) must not exceed MaxBackoff (1s)"},
		{"no default", func(o *Options) { o.Routes.Default = "" }, "routes: default: a default channel is required"},
		{"unknown default", func(o *Options) { o.Routes.Default = "b" }, `routes: default: channel "b" is not in channels`},
		{"bad type", func(o *Options) {
			o.Routes.Channels["c"] = Channel{Type: "email", URLSecret: SecretKeyRef{Namespace: "ns", Name: "s"}}
		}, `channels["c"].type: "email": want slack, teams or cloudevents` + "\n" + `channels["c"].urlSecret.key: required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.edit(&o)
			err := o.Validate()
			if _, nerr := New(o); (nerr == nil) != (err == nil) {
				t.Errorf("New and Validate disagree: %v, %v", nerr, err)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSummary is the sentence a team reads.
func TestSummary(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Alert)
		want string
	}{
		{"monthly", func(*Alert) {}, "namespace payments is at 82 % of its monthly budget: $4,120 of $5,000, forecast $5,630 by Nov 30."},
		{"utilization rounded down", func(a *Alert) { a.Utilization = 99.97 }, "namespace payments is at 99 % of its monthly budget: $4,120 of $5,000, forecast $5,630 by Nov 30."},
		{"no forecast", func(a *Alert) { a.Forecast = 0 }, "namespace payments is at 82 % of its monthly budget: $4,120 of $5,000."},
		{"weekly, in francs", func(a *Alert) {
			a.PeriodEnd, a.Currency, a.Scope = a.PeriodStart.AddDate(0, 0, 7), "chf", "team=payments"
		}, "team=payments is at 82 % of its weekly budget: 4,120 CHF of 5,000 CHF, forecast 5,630 CHF by Nov 7."},
		{"odd period, no scope", func(a *Alert) {
			a.PeriodEnd, a.Scope = a.PeriodStart.AddDate(0, 0, 45), ""
		}, "namespace payments is at 82 % of its budget: $4,120 of $5,000, forecast $5,630 by Dec 15."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := testAlert(tc.edit).Summary(); got != tc.want {
				t.Errorf("Summary =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestMoney(t *testing.T) {
	tests := []struct {
		v        float64
		currency string
		want     string
	}{
		{4120, "USD", "$4,120"},
		{4120.49, "USD", "$4,120"},
		{12.4, "USD", "$12.40"},
		{0.004, "USD", "$0.00"},
		{5, "EUR", "€5"},
		{1234567.8, "GBP", "£1,234,568"},
		{-2500, "USD", "-$2,500"},
		{99.999, "JPY", "¥100.00"},
		{1000, "", "1,000"},
		{1000, "CHF", "1,000 CHF"},
		{1e16, "USD", "$1e+16"},
		{nanValue(), "USD", "n/a"},
	}
	for _, tc := range tests {
		if got := money(tc.v, tc.currency); got != tc.want {
			t.Errorf("money(%v, %q) = %q, want %q", tc.v, tc.currency, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 21, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"30", 30 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"99999999999", 24 * time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.header, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}

// TestBackoff doubles from MinBackoff to MaxBackoff, jittered down by at
// most half.
func TestBackoff(t *testing.T) {
	n, err := New(Options{Secrets: mapSecrets(nil), MinBackoff: time.Second, MaxBackoff: 30 * time.Second, Routes: Routes{
		Default: "a", Channels: map[string]Channel{"a": {Type: Slack, URLSecret: SecretKeyRef{Namespace: "n", Name: "s", Key: "k"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for failed, ceiling := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 40: 30 * time.Second} {
		for range 100 {
			if got := n.backoff(failed); got > ceiling || got < ceiling/2 {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", failed, got, ceiling/2, ceiling)
			}
		}
	}
}

// TestCloudEventSource builds a URI-reference from whatever names the
// budget and cluster, one path segment each.
func TestCloudEventSource(t *testing.T) {
	tests := []struct {
		cluster, budget, want string
	}{
		{"prod-eu-1", "payments/monthly", "/tollgate/prod-eu-1/budgets/payments/monthly"},
		{"", "monthly", "/tollgate/budgets/monthly"},
		{"prod eu/1", "a b/c?d#e", "/tollgate/prod%20eu%2F1/budgets/a%20b/c%3Fd%23e"},
		{"", "", "/tollgate/budgets"},
	}
	for _, tc := range tests {
		a, omitted := testAlert(func(a *Alert) { a.Cluster, a.Budget = tc.cluster, tc.budget }).normalized()
		body, err := cloudEvent(a, omitted, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var ev struct{ Source string }
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Source != tc.want {
			t.Errorf("cluster %q, budget %q: source %q, want %q", tc.cluster, tc.budget, ev.Source, tc.want)
		}
	}
}

package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultAttemptTimeout = 5 * time.Second
	DefaultAttempts       = 5
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 30 * time.Second
	DefaultMaxRetryAfter  = time.Minute
)

// maxResponseBytes bounds what is read of a receiver's answer: enough for
// an error message, never a body a broken receiver streams forever.
const maxResponseBytes = 4 << 10

// Options configure a Notifier. Zero durations and counts take the
// Default* values.
type Options struct {
	// Routes map channel names to webhooks. Required.
	Routes Routes
	// Secrets reads the webhook URL of a channel, at every delivery, so a
	// rotated Secret takes effect at the next alert. Required.
	Secrets SecretReader
	// Transport posts the webhooks (default: a clone of
	// http.DefaultTransport). Redirects are never followed: a webhook
	// URL is used as given.
	Transport http.RoundTripper
	// AttemptTimeout bounds one POST, its answer included.
	AttemptTimeout time.Duration
	// Attempts is how many POSTs an alert gets at most.
	Attempts int
	// MinBackoff is the wait after the first failed attempt; it doubles
	// after each failure up to MaxBackoff, and each wait is jittered down
	// by up to half so that alerts failing together do not retry
	// together. Tests make them milliseconds.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// MaxRetryAfter caps the Retry-After a rate-limited receiver is
	// granted. A receiver asking for longer ends the delivery, with
	// Result.RetryAfter saying when to try again.
	MaxRetryAfter time.Duration
	// Observer is told every Result, for metrics (optional; see Metrics).
	Observer Observer
	// Logger receives a debug record per failed attempt (default
	// slog.Default()). Final outcomes are the caller's to log, from the
	// Result.
	Logger *slog.Logger
	// Now is the clock for the CloudEvents time of alerts without one
	// (default time.Now).
	Now func() time.Time
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	switch {
	case o.Secrets == nil:
		return errors.New("alerts options: Secrets is required: webhook URLs are read from Secrets")
	case o.AttemptTimeout < 0:
		return fmt.Errorf("alerts options: AttemptTimeout must not be negative, got %s", o.AttemptTimeout)
	case o.Attempts < 0:
		return fmt.Errorf("alerts options: Attempts must not be negative, got %d", o.Attempts)
	case o.MinBackoff < 0 || o.MaxBackoff < 0 || o.MaxRetryAfter < 0:
		return errors.New("alerts options: MinBackoff, MaxBackoff and MaxRetryAfter must not be negative")
	case o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff:
		return fmt.Errorf("alerts options: MinBackoff (%s) must not exceed MaxBackoff (%s)", o.MinBackoff, o.MaxBackoff)
	}
	if err := o.Routes.Validate(); err != nil {
		return fmt.Errorf("alerts options: routes: %w", err)
	}
	return nil
}

// Observer is told the outcome of every delivery, so the scanner can count
// alerts delivered and failed by channel type (Metrics does, with
// Prometheus).
type Observer interface {
	ObserveDelivery(Result)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(Result)

// ObserveDelivery calls f(r).
func (f ObserverFunc) ObserveDelivery(r Result) { f(r) }

var _ Observer = ObserverFunc(nil)

// Result is the outcome of one Deliver. A failed delivery says why in Err;
// nothing is dropped without one.
type Result struct {
	// AlertID is the delivered alert's ID.
	AlertID string
	// Channel is the channel the alert was sent to, and Type its kind.
	Channel string
	Type    ChannelType
	// Note says why the default channel was taken: the namespace named no
	// channel, or one that is not configured. Empty when the namespace's
	// choice was followed.
	Note string
	// Endpoint is the webhook's scheme and host, all of its URL that may
	// be shown.
	Endpoint string
	// Attempts counts the POSTs made.
	Attempts int
	// Delivered reports a 2xx answer.
	Delivered bool
	// StatusCode is the last answer's HTTP status, 0 if there was none.
	StatusCode int
	// Backoff is the time waited between attempts, as scheduled.
	Backoff time.Duration
	// RetryAfter is set when a receiver asked to be left alone for longer
	// than MaxRetryAfter: try again no sooner.
	RetryAfter time.Duration
	// Permanent reports a failure that retrying the same alert will not
	// cure until someone acts: a 4xx answer, a redirect, an invalid alert
	// or a Secret holding no usable URL.
	Permanent bool
	// Err is why the alert was not delivered; nil when it was. It never
	// holds more of the webhook URL than Endpoint.
	Err error
}

// StatusError is a receiver's failure answer.
type StatusError struct {
	Endpoint   string // scheme and host
	StatusCode int
	// Body is the start of the answer (Slack's "invalid_blocks", say),
	// with anything resembling the webhook URL removed.
	Body string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s answered %d %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Notifier routes and delivers alerts. It is safe for concurrent use; to
// change its routes, build another.
type Notifier struct {
	opts   Options
	client *http.Client
	log    *slog.Logger
}

// New builds a Notifier; zero Options take their defaults.
func New(opts Options) (*Notifier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Routes.Channels = maps.Clone(opts.Routes.Channels)
	opts.AttemptTimeout = orDefault(opts.AttemptTimeout, DefaultAttemptTimeout)
	opts.Attempts = orDefault(opts.Attempts, DefaultAttempts)
	opts.MinBackoff = orDefault(opts.MinBackoff, DefaultMinBackoff)
	opts.MaxBackoff = orDefault(opts.MaxBackoff, max(DefaultMaxBackoff, opts.MinBackoff))
	opts.MaxRetryAfter = orDefault(opts.MaxRetryAfter, DefaultMaxRetryAfter)
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Notifier{
		opts: opts,
		log:  log,
		client: &http.Client{
			Transport: opts.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Deliver sends an alert to its channel: the one named by the
// ChannelAnnotation of the first annotation set that has it (pass the
// Budget's, then its Namespace's), else the default channel. It tries
// until a receiver accepts the alert, an attempt fails in a way retrying
// will not cure, Attempts are spent, or ctx ends, and returns what
// happened.
func (n *Notifier) Deliver(ctx context.Context, a Alert, annotations ...map[string]string) (res Result) {
	rt := n.opts.Routes.route(annotations)
	res = Result{AlertID: a.ID, Channel: rt.name, Type: rt.ch.Type, Note: rt.note}
	if n.opts.Observer != nil {
		defer func() { n.opts.Observer.ObserveDelivery(res) }()
	}
	if err := a.Validate(); err != nil {
		res.Err, res.Permanent = err, true
		return res
	}
	ep, err := n.endpoint(ctx, rt)
	if err != nil {
		res.Err = err
		res.Permanent = !errors.As(err, new(*secretReadError))
		return res
	}
	res.Endpoint = ep.shown
	norm, omitted := a.normalized()
	p, err := encode(rt.ch.Type, norm, omitted, n.opts.Now())
	if err != nil {
		res.Err, res.Permanent = err, true
		return res
	}
	n.post(ctx, ep, p, &res)
	return res
}

// post makes the attempts, waiting between them.
func (n *Notifier) post(ctx context.Context, ep endpoint, p payload, res *Result) {
	for {
		res.Attempts++
		out := n.attempt(ctx, ep, p)
		res.StatusCode, res.Err = out.status, out.err
		if out.err == nil {
			res.Delivered = true
			return
		}
		if ctx.Err() != nil {
			res.Err = fmt.Errorf("delivery stopped: %w", out.err)
			return
		}
		if out.permanent {
			res.Permanent = true
			return
		}
		if res.Attempts >= n.opts.Attempts {
			return
		}
		wait := n.backoff(res.Attempts)
		if out.retryAfter > 0 {
			if out.retryAfter > n.opts.MaxRetryAfter {
				res.RetryAfter = out.retryAfter
				res.Err = fmt.Errorf("%w; asked to wait %s, longer than the %s allowed", out.err, out.retryAfter, n.opts.MaxRetryAfter)
				return
			}
			wait = out.retryAfter
		}
		n.log.DebugContext(ctx, "budget alert attempt failed; retrying",
			"alert", res.AlertID, "channel", res.Channel, "type", res.Type, "endpoint", ep.shown,
			"attempt", res.Attempts, "status", out.status, "wait", wait, "error", out.err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			res.Err = fmt.Errorf("%w; stopped waiting to retry: %w", out.err, ctx.Err())
			return
		case <-t.C:
			res.Backoff += wait
		}
	}
}

// backoff is the wait after the given number of failed attempts:
// MinBackoff doubled per attempt, capped at MaxBackoff, less a random part
// of up to half of it.
func (n *Notifier) backoff(failed int) time.Duration {
	d := n.opts.MinBackoff
	for i := 1; i < failed && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxBackoff)
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(rand.Int64N(half + 1))
	}
	return d
}

// outcome is one attempt's result.
type outcome struct {
	status     int
	retryAfter time.Duration
	permanent  bool
	err        error
}

// attempt POSTs the payload once, within AttemptTimeout.
func (n *Notifier) attempt(ctx context.Context, ep endpoint, p payload) outcome {
	actx, cancel := context.WithTimeout(ctx, n.opts.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, ep.url.String(), bytes.NewReader(p.body))
	if err != nil {
		return outcome{permanent: true, err: fmt.Errorf("building the request to %s: %w", ep.shown, ep.redact(err))}
	}
	req.Header.Set("Content-Type", p.contentType)
	req.Header.Set("User-Agent", "tollgate-budget-alerts")
	resp, err := n.client.Do(req)
	if err != nil {
		err = ep.redact(err)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer from %s within %s: %w", ep.shown, n.opts.AttemptTimeout, err)
		}
		return outcome{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	out := outcome{status: resp.StatusCode}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out
	}
	out.err = &StatusError{Endpoint: ep.shown, StatusCode: resp.StatusCode, Body: ep.snippet(body)}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		out.retryAfter = retryAfter(resp.Header.Get("Retry-After"), n.opts.Now())
	case code == http.StatusRequestTimeout || code >= 500:
	case code >= 300 && code < 400:
		out.permanent = true
		out.err = fmt.Errorf("%w (redirects are not followed: put the final URL in the Secret)", out.err)
	default:
		out.permanent = true
	}
	return out
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; zero
// when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// endpoint is a webhook URL and what of it may be shown.
type endpoint struct {
	url     *url.URL
	shown   string   // scheme://host
	secrets []string // substrings of the URL that must not appear anywhere
}

// secretReadError is a Secret that could not be read, which may heal by
// itself (the API server was away), unlike one read but unusable.
type secretReadError struct{ err error }

func (e *secretReadError) Error() string { return e.err.Error() }
func (e *secretReadError) Unwrap() error { return e.err }

// endpoint reads and checks a channel's webhook URL. Errors name the
// channel and the Secret, never the URL.
func (n *Notifier) endpoint(ctx context.Context, rt route) (endpoint, error) {
	ref := rt.ch.URLSecret
	raw, err := n.opts.Secrets(ctx, ref.Namespace, ref.Name, ref.Key)
	if err != nil {
		return endpoint{}, &secretReadError{fmt.Errorf("channel %q: reading the webhook URL from %s: %w", rt.name, ref, err)}
	}
	s := strings.TrimSpace(string(raw))
	bad := func(problem string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("channel %q: %s does not hold a usable webhook URL: %s", rt.name, ref, problem)
	}
	if s == "" {
		return bad("it is empty")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return bad("it does not parse as a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the scheme must be https (or http)")
	case u.Host == "":
		return bad("it has no host")
	case u.User != nil:
		return bad("it must not hold user information")
	}
	ep := endpoint{url: u, shown: u.Scheme + "://" + u.Host}
	for _, part := range []string{s, u.String(), u.EscapedPath(), u.Path, u.RawQuery} {
		if len(part) >= 4 { // shorter ones ("/") would mangle messages, and hide nothing
			ep.secrets = append(ep.secrets, part)
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= 6 {
				ep.secrets = append(ep.secrets, v, url.QueryEscape(v))
			}
		}
	}
	slices.SortFunc(ep.secrets, func(x, y string) int { return len(y) - len(x) })
	return ep, nil
}

// redact replaces a *url.Error's URL with the endpoint's scheme and host,
// and scrubs the rest of the message, so the error can be logged and
// returned.
func (ep endpoint) redact(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = &url.Error{Op: ue.Op, URL: ep.shown, Err: ue.Err}
	}
	if msg := err.Error(); ep.scrub(msg) != msg {
		return &scrubbedError{msg: ep.scrub(msg), err: err}
	}
	return err
}

// scrubbedError shows a message with the secret parts removed, and still
// unwraps to the cause, for errors.Is.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub removes every secret part of the URL from s, longest first.
func (ep endpoint) scrub(s string) string {
	for _, secret := range ep.secrets {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// snippet is the start of a failure answer, one line, scrubbed, cut.
func (ep endpoint) snippet(body []byte) string {
	s := clean(strings.Join(strings.Fields(string(body)), " "), 300)
	return ep.scrub(s)
}

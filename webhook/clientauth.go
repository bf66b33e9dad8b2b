package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Caller is who sent an admission request, as the client certificate
// showed it.
type Caller struct {
	// Authenticated is true when the client certificate verified against
	// the client CA with an allowed name.
	Authenticated bool
	// Name is the allowed name the certificate carried (its common name
	// or a DNS name).
	Name string
}

type callerKey struct{}

// WithCaller returns ctx carrying the caller of the request it belongs to.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries; the zero Caller
// (unauthenticated) when none.
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// ClientAuthOptions configure ClientAuth.
type ClientAuthOptions struct {
	// CAFile is the PEM bundle of the CA(s) that sign the API server's
	// client certificate. It is re-read when it changes.
	CAFile string
	// Names are the allowed names: a certificate is accepted when its
	// common name or one of its DNS names is one of them.
	Names []string
	// CheckInterval is how often, at most, the CA file is checked for a
	// change (default 1s); checks happen on requests, not in the
	// background.
	CheckInterval time.Duration
	// Metrics counts refused requests and CA reloads; may be nil.
	Metrics *Metrics
	// Logger may be nil.
	Logger *slog.Logger
	// Now is the clock certificates are checked against (default
	// time.Now).
	Now func() time.Time
}

// Validate checks the options.
func (o *ClientAuthOptions) Validate() error {
	if o.CAFile == "" {
		return errors.New("client authentication: the client CA file is required (--client-ca-file)")
	}
	if len(o.Names) == 0 {
		return errors.New("client authentication: at least one allowed client name is required (--client-name): a CA may sign certificates for other clients too")
	}
	for i, n := range o.Names {
		if strings.TrimSpace(n) == "" {
			return fmt.Errorf("client authentication: client name %d is empty", i+1)
		}
	}
	if o.CheckInterval < 0 {
		return errors.New("client authentication: CheckInterval must not be negative")
	}
	return nil
}

// ClientAuth admits only requests whose TLS client certificate verifies
// against a client CA and names an allowed client: the API server
// presents one when its AdmissionConfiguration gives it a kubeconfig for
// the webhook. The server asks for a certificate without requiring one
// (tls.RequestClientCert, see TLSConfig), so probes reach /healthz and
// /readyz without one; TLS itself proves the client holds the
// certificate's key, and ClientAuth checks the chain and the name per
// request against the CA file as it is now, which makes the CA
// hot-reloadable.
type ClientAuth struct {
	opts    ClientAuthOptions
	roots   atomic.Pointer[x509.CertPool]
	mu      sync.Mutex // one reload at a time
	checked time.Time
	stat    fileStamp
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

// NewClientAuth reads the CA file; an unreadable or empty one is an error.
func NewClientAuth(opts ClientAuthOptions) (*ClientAuth, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.CheckInterval == 0 {
		opts.CheckInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &ClientAuth{opts: opts}
	if err := a.load(); err != nil {
		return nil, err
	}
	a.checked = opts.Now()
	return a, nil
}

// TLSConfig sets c to ask clients for a certificate without requiring one
// or verifying it in the handshake: verification happens per request.
func (a *ClientAuth) TLSConfig(c *tls.Config) {
	if a == nil {
		return
	}
	c.ClientAuth = tls.RequestClientCert
}

// load reads the CA file into the pool in force.
func (a *ClientAuth) load() error {
	fi, err := os.Stat(a.opts.CAFile)
	if err != nil {
		return fmt.Errorf("client CA %s: %w", a.opts.CAFile, err)
	}
	data, err := os.ReadFile(a.opts.CAFile)
	if err != nil {
		return fmt.Errorf("client CA %s: %w", a.opts.CAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("client CA %s: no PEM certificate in it", a.opts.CAFile)
	}
	a.roots.Store(pool)
	a.stat = fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	return nil
}

// maybeReload re-reads the CA file when it changed; a file that does not
// read keeps the CA in force and is logged and counted.
func (a *ClientAuth) maybeReload() {
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.checked) < a.opts.CheckInterval {
		return
	}
	a.checked = now
	fi, err := os.Stat(a.opts.CAFile)
	if err == nil && (fileStamp{size: fi.Size(), modTime: fi.ModTime()}) == a.stat {
		return
	}
	if err == nil {
		err = a.load()
	}
	if err != nil {
		a.opts.Logger.Error("client CA reload failed; keeping the CA in force", "file", a.opts.CAFile, "error", err)
		a.opts.Metrics.clientCAReloaded("error")
		return
	}
	a.opts.Logger.Info("client CA reloaded", "file", a.opts.CAFile)
	a.opts.Metrics.clientCAReloaded("success")
}

// Reasons a request is refused, as the metric labels them.
const (
	refusedNoCertificate = "no_certificate"
	refusedUntrusted     = "untrusted"
	refusedName          = "name"
)

// verify checks the request's client certificate: the allowed name it
// carries, or the HTTP status, the metric's reason and an error saying
// what is wrong.
func (a *ClientAuth) verify(r *http.Request) (string, int, string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", http.StatusUnauthorized, refusedNoCertificate,
			errors.New("a client certificate signed by the configured client CA is required")
	}
	a.maybeReload()
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: a.roots.Load(), Intermediates: inter, CurrentTime: a.opts.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", http.StatusForbidden, refusedUntrusted,
			fmt.Errorf("client certificate %q does not verify against the client CA: %w", leaf.Subject.CommonName, err)
	}
	for _, n := range append([]string{leaf.Subject.CommonName}, leaf.DNSNames...) {
		if n != "" && slices.Contains(a.opts.Names, n) {
			return n, 0, "", nil
		}
	}
	return "", http.StatusForbidden, refusedName,
		fmt.Errorf("client certificate names %s, none of them an allowed client name", certNames(leaf))
}

func certNames(c *x509.Certificate) string {
	names := []string{"CN=" + c.Subject.CommonName}
	for _, d := range c.DNSNames {
		names = append(names, "DNS:"+d)
	}
	return strings.Join(names, ", ")
}

// Wrap admits to h only requests from an allowed client, with the Caller
// in their context. A refused request gets a plain-text 401 or 403, not an
// AdmissionReview: it is not reviewed, logged as a decision or counted in
// the admission metrics, only in tollgate_admission_unauthenticated_total.
// A nil ClientAuth admits every request as an unauthenticated Caller.
func (a *ClientAuth) Wrap(webhook string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a == nil {
			h.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{})))
			return
		}
		name, code, reason, err := a.verify(r)
		if err != nil {
			a.opts.Metrics.unauthenticatedRequest(webhook, reason)
			a.opts.Logger.WarnContext(r.Context(), "admission request refused", "webhook", webhook, "remote", r.RemoteAddr, "reason", reason, "error", err)
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `TLS-client-certificate`)
			}
			w.Header().Set("Connection", "close") // the body is not read
			httpError(w, code, "tollgate: "+err.Error())
			return
		}
		h.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{Authenticated: true, Name: name})))
	})
}

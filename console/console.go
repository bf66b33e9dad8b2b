package console

import (
	"cmp"
	"context"
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/webhook"
)

//go:embed templates/*.html
var templateFS embed.FS

// Options configure a console.
type Options struct {
	// REST is the caller's own connection (their kubeconfig): every read
	// is theirs.
	REST *rest.Config
	// Namespace is the kubeconfig context's namespace, read when the
	// caller may not list namespaces.
	Namespace string
	// ConfigName names the TollgateConfig whose overrides give the
	// policies' actions (default tollgate).
	ConfigName string
	// Modules are the built-in policies (the library), listed on the
	// overview with the actions the cluster's config gives them.
	Modules []policies.Module
	// PrometheusURL, when set, gives the denials over time and the
	// Budgets' spend over time.
	PrometheusURL string
	// Timeout bounds the reads behind one page (default 20s).
	Timeout time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
}

// Server serves the console's pages.
type Server struct {
	opts Options
	r    *reader
	prom promv1.API
	tmpl *template.Template

	// policies caches the library compiled with the cluster's config, by
	// the config's resourceVersion.
	mu          sync.Mutex
	policiesRV  string
	policyTable []policyRow
}

// New checks the options and parses the templates.
func New(opts Options) (*Server, error) {
	if opts.REST == nil {
		return nil, errors.New("console: no API server connection (--kubeconfig)")
	}
	opts.ConfigName = cmp.Or(opts.ConfigName, "tollgate")
	opts.Timeout = cmp.Or(opts.Timeout, 20*time.Second)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := client.New(opts.REST, client.Options{Scheme: webhook.Scheme()})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	s := &Server{opts: opts, r: &reader{c: c, namespace: opts.Namespace}}
	if opts.PrometheusURL != "" {
		pc, err := api.NewClient(api.Config{Address: opts.PrometheusURL, RoundTripper: limitBody{api.DefaultRoundTripper, maxPromBody}})
		if err != nil {
			return nil, fmt.Errorf("console: --prometheus %q: %w", opts.PrometheusURL, err)
		}
		s.prom = promv1.NewAPI(pc)
	}
	s.tmpl, err = template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	return s, nil
}

// Handler serves the pages to requests whose Host is addr (the loopback
// address the console listens on) or localhost at its port: a page of
// another site cannot reach the console through DNS rebinding.
func (s *Server) Handler(addr string) http.Handler {
	_, port, _ := net.SplitHostPort(addr)
	allowed := map[string]bool{addr: true, "localhost:" + port: true, "127.0.0.1:" + port: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page("overview", s.overview))
	mux.HandleFunc("GET /budgets", s.page("budgets", s.budgets))
	mux.HandleFunc("GET /reports", s.page("reports", s.reports))
	mux.HandleFunc("GET /exceptions", s.page("exceptions", s.exceptions))
	mux.HandleFunc("GET /images", s.page("images", s.images))
	mux.HandleFunc("GET /object", s.page("object", s.object))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[r.Host] {
			http.Error(w, "this console answers on "+addr+" only", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		// No script, no frame, no request elsewhere: the pages are text,
		// tables and inline SVG.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// view is what a page's builder returns: the data its template shows, and
// the table CSV exports.
type view struct {
	Title string
	Data  any
	// CSV is the page's main table, header first.
	CSV [][]string
	// Notes say what the caller could not see (hidden namespaces, kinds
	// not installed, a truncated list).
	Notes []string
}

// page runs a builder with the reads' deadline, and renders its view as
// HTML, or as CSV with ?format=csv.
func (s *Server) page(name string, build func(ctx context.Context, r *http.Request) (*view, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		v, err := build(ctx, r)
		if err != nil {
			var be *badRequest
			if errors.As(err, &be) {
				http.Error(w, be.Error(), http.StatusBadRequest)
				return
			}
			s.opts.Logger.ErrorContext(ctx, "page failed", "page", name, "error", err)
			http.Error(w, "reading the cluster failed: "+err.Error(), http.StatusBadGateway)
			return
		}
		if r.URL.Query().Get("format") == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "tollgate-"+name+".csv"))
			cw := csv.NewWriter(w)
			for _, row := range v.CSV {
				_ = cw.Write(csvSafe(row))
			}
			cw.Flush()
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := s.tmpl.ExecuteTemplate(w, name+".html", pageData{Page: name, View: v, Query: r.URL.Query(), Now: s.opts.Now()}); err != nil {
			s.opts.Logger.ErrorContext(ctx, "rendering failed", "page", name, "error", err)
		}
	}
}

// pageData is what every template gets.
type pageData struct {
	Page  string
	View  *view
	Query map[string][]string
	Now   time.Time
}

// badRequest is a query the console cannot answer (a page number that is
// not one, say): 400, not 502.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// csvSafe keeps a spreadsheet from running a cell as a formula: a cell
// starting with =, +, - or @ (a message or a label a user controls) is
// prefixed with a quote, as OWASP advises.
func csvSafe(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			c = "'" + c
		}
		out[i] = c
	}
	return out
}

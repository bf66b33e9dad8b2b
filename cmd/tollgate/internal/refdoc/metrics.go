package refdoc

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/serve"
	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/alerts"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/nsdefaults"
	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/scanners/audit"
	"github.com/tollgate-dev/tollgate/scanners/imagescan"
	"github.com/tollgate-dev/tollgate/webhook"
)

// metricGroup is one part of the server and how it registers its series:
// the constructor tollgate serve calls, given stand-ins for what it
// needs to run (never called: constructing only registers).
type metricGroup struct {
	name, pkg, note string
	register        func(reg prometheus.Registerer) error
}

// noClient stands in for the API server clients the constructors keep for
// later; registering the series calls none of their methods.
type noClient struct{ client.Client }

type noSink struct{ audit.Sink }

var metricGroups = []metricGroup{
	{name: "Admission", pkg: "webhook", register: func(reg prometheus.Registerer) error {
		webhook.NewMetrics(reg)
		return nil
	}},
	{name: "Background audit", pkg: "scanners/audit", register: func(reg prometheus.Registerer) error {
		_, err := audit.New(audit.Options{Reader: noClient{}, Mapper: meta.NewDefaultRESTMapper(nil),
			Policies: func() *review.Set { return nil }, Sink: noSink{}, Registerer: reg})
		return err
	}},
	{name: "Verdict cache", pkg: "cmd/tollgate/serve", register: func(reg prometheus.Registerer) error {
		return serve.RegisterVerdictCacheMetrics(reg, &review.Holder{})
	}},
	{name: "Image scanning", pkg: "scanners/imagescan", register: func(reg prometheus.Registerer) error {
		imagescan.NewMetrics(reg)
		return nil
	}},
	{name: "Budgets", pkg: "finops/budget",
		note: "With --cluster-name, tollgate serve adds the constant label `cluster` (the cluster's name) to these series.",
		register: func(reg prometheus.Registerer) error {
			model, err := finops.NewModel(finops.ModelOptions{})
			if err != nil {
				return err
			}
			_, err = budget.New(budget.Options{Client: noClient{}, Reader: noClient{}, Model: model, Registerer: reg})
			return err
		}},
	{name: "Budget alerts", pkg: "finops/alerts", register: func(reg prometheus.Registerer) error {
		alerts.NewMetrics(reg)
		return nil
	}},
	{name: "Budgets across clusters: the mirror", pkg: "finops/budget", register: func(reg prometheus.Registerer) error {
		_, err := budget.NewMirror(budget.MirrorOptions{Central: noClient{}, Local: noClient{}, Cluster: "any", Registerer: reg})
		return err
	}},
	{name: "Namespace defaults", pkg: "nsdefaults", register: func(reg prometheus.Registerer) error {
		nsdefaults.NewMetrics(reg)
		return nil
	}},
	{name: "Policy source", pkg: "policies/ocisource", register: func(reg prometheus.Registerer) error {
		_, err := ocisource.New(ocisource.Options{Ref: "oci://registry.invalid/policies:any", Trust: &ocisource.Trust{}, Registerer: reg})
		return err
	}},
}

// metric is one series family as the page lists it.
type metric struct {
	name, typ, help string
	labels          []string
}

// Metrics renders metrics.md: the series each part of tollgate serve
// registers, read from the collectors its constructors register.
func Metrics() ([]byte, error) {
	var b strings.Builder
	b.WriteString(header("Metrics",
		"The Prometheus series `tollgate serve` exposes on /metrics, by the part of the server that registers them. "+
			"The page is made by calling each part's constructor, as the server does, with a registerer that keeps every "+
			"collector registered, then asking each collector to describe its series (a vector with no series yet still "+
			"describes itself); a part's series exist only when the server runs that part."))
	b.WriteString("Not listed here: the series of controller-runtime's own registry, which /metrics serves beside " +
		"Tollgate's (Go runtime, process, work queues, REST client, webhook).\n\n")
	all := prometheus.NewPedanticRegistry() // one registry, as in the server: a name registered twice fails
	for _, g := range metricGroups {
		rec := &recorder{inner: all}
		if err := g.register(rec); err != nil {
			return nil, fmt.Errorf("%s metrics: %w", g.name, err)
		}
		ms, err := describe(rec.collectors)
		if err != nil {
			return nil, fmt.Errorf("%s metrics: %w", g.name, err)
		}
		fmt.Fprintf(&b, "## %s\n\n", g.name)
		fmt.Fprintf(&b, "Registered by [%s](../../%s).", g.pkg, g.pkg)
		if g.note != "" {
			b.WriteString(" " + g.note)
		}
		b.WriteString("\n\n| Name | Type | Labels | Help |\n|---|---|---|---|\n")
		for _, m := range ms {
			labels := make([]string, len(m.labels))
			for i, l := range m.labels {
				labels[i] = code(l)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", code(m.name), m.typ, strings.Join(labels, ", "), prose(m.help))
		}
		b.WriteString("\n")
	}
	if _, err := all.Gather(); err != nil { // the pedantic registry checks what the collectors collect
		return nil, fmt.Errorf("gathering the metrics: %w", err)
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}

// recorder registers with inner and keeps what it registered.
type recorder struct {
	inner      prometheus.Registerer
	collectors []prometheus.Collector
}

var _ prometheus.Registerer = (*recorder)(nil)

func (r *recorder) Register(c prometheus.Collector) error {
	if err := r.inner.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r *recorder) Unregister(c prometheus.Collector) bool {
	r.collectors = slices.DeleteFunc(r.collectors, func(x prometheus.Collector) bool { return x == c })
	return r.inner.Unregister(c)
}

// describe lists the series families of cs, sorted by name. The type
// comes from a collected series when there is one, else from the kind of
// vector the collector is.
func describe(cs []prometheus.Collector) ([]metric, error) {
	var out []metric
	for _, c := range cs {
		types := map[string]string{}
		ch := make(chan prometheus.Metric)
		go func() { c.Collect(ch); close(ch) }()
		var errs []error
		for m := range ch {
			var pb dto.Metric
			if err := m.Write(&pb); err != nil {
				errs = append(errs, err)
				continue
			}
			types[m.Desc().String()] = dtoType(&pb)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		descs := make(chan *prometheus.Desc)
		go func() { c.Describe(descs); close(descs) }()
		for d := range descs {
			m, err := parseDesc(d.String())
			if err != nil {
				return nil, err
			}
			if m.typ = types[d.String()]; m.typ == "" {
				m.typ = vecType(c)
			}
			if m.typ == "" {
				return nil, fmt.Errorf("%s: no series collected and not a known vector: its type is unknown", m.name)
			}
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b metric) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func dtoType(m *dto.Metric) string {
	switch {
	case m.Counter != nil:
		return "counter"
	case m.Gauge != nil:
		return "gauge"
	case m.Histogram != nil:
		return "histogram"
	case m.Summary != nil:
		return "summary"
	}
	return "untyped"
}

func vecType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	}
	return ""
}

// parseDesc reads a *prometheus.Desc's String, the only place the
// client library shows a description's variable labels:
//
//	Desc{fqName: "x", help: "y", unit: "", constLabels: {a="b"}, variableLabels: {c,d}}
//
// Constant labels join the variable ones, as name="value".
func parseDesc(s string) (metric, error) {
	var m metric
	bad := func(what string) (metric, error) { return metric{}, fmt.Errorf("reading %s: unexpected %s", s, what) }
	rest, ok := strings.CutPrefix(s, "Desc{fqName: ")
	if !ok {
		return bad("start")
	}
	quoted := func(key string) (string, bool) {
		r, ok := strings.CutPrefix(rest, key)
		if !ok {
			return "", false
		}
		q, err := strconv.QuotedPrefix(r)
		if err != nil {
			return "", false
		}
		v, _ := strconv.Unquote(q)
		rest = strings.TrimPrefix(r[len(q):], ", ")
		return v, true
	}
	if m.name, ok = quoted(""); !ok {
		return bad("name")
	}
	if m.help, ok = quoted("help: "); !ok {
		return bad("help")
	}
	quoted("unit: ") // newer client libraries only
	r, ok := strings.CutPrefix(rest, "constLabels: {")
	if !ok {
		return bad("constant labels")
	}
	for !strings.HasPrefix(r, "}") {
		name, val, ok := strings.Cut(r, "=")
		if !ok {
			return bad("constant label")
		}
		q, err := strconv.QuotedPrefix(val)
		if err != nil {
			return bad("constant label value")
		}
		m.labels = append(m.labels, name+"="+q)
		r = strings.TrimPrefix(val[len(q):], ",")
	}
	vars, ok := strings.CutPrefix(r, "}, variableLabels: {")
	if !ok {
		return bad("variable labels")
	}
	vars, ok = strings.CutSuffix(vars, "}}")
	if !ok {
		return bad("end")
	}
	if vars != "" {
		for _, v := range strings.Split(vars, ",") {
			if c, ok := strings.CutPrefix(v, "c("); ok { // a constrained label
				v = strings.TrimSuffix(c, ")")
			}
			m.labels = append(m.labels, v)
		}
	}
	return m, nil
}

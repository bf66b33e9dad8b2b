// Package serve is the wiring of `tollgate serve`: it assembles the
// loader, the review core with its image and budget gates, the webhook's
// HTTP adapter, certificates, the background audit and the budget scanner
// into one controller-runtime manager, and runs it. Behaviour lives in the
// packages it wires; this one only connects them.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/alerts"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/finops/usage"
	"github.com/tollgate-dev/tollgate/nsdefaults"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/loader"
	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vuln"
	"github.com/tollgate-dev/tollgate/scanners/audit"
	"github.com/tollgate-dev/tollgate/scanners/imagescan"
	"github.com/tollgate-dev/tollgate/scanners/trivy"
	"github.com/tollgate-dev/tollgate/webhook"
	"github.com/tollgate-dev/tollgate/webhook/certs"
)

// Certificate modes of the server.
const (
	// CertModeSelf: Tollgate runs its own CA, rotates it and the serving
	// certificate, and patches caBundle in the webhook configurations.
	CertModeSelf = "self"
	// CertModeFiles: the certificate files in CertDir come from elsewhere
	// (cert-manager); they are reloaded when they change.
	CertModeFiles = "files"
)

// How /metrics is protected.
const (
	// MetricsAuthKubernetes admits a bearer token the API server
	// authenticates (TokenReview) for a user it authorizes to get the
	// non-resource URL /metrics (SubjectAccessReview).
	MetricsAuthKubernetes = "kubernetes"
	// MetricsAuthNone serves /metrics to anyone who reaches the port.
	MetricsAuthNone = "none"
)

// Options configure `tollgate serve`.
type Options struct {
	// REST is the API server connection.
	REST *rest.Config
	// Host and Port the HTTPS server listens on.
	Host string
	Port int
	// CertDir holds tls.crt and tls.key.
	CertDir  string
	CertMode string
	// CertSecret names the Secret (in Namespace) holding the self-managed
	// CA and serving certificate.
	CertSecret string
	// CAValidity, CertValidity and CAPublishGrace tune the self-managed
	// certificates; zero keeps the defaults (a year, 90 days, a minute).
	CAValidity, CertValidity, CAPublishGrace time.Duration
	// CertCheckInterval is how often certificates are checked (default 1m).
	CertCheckInterval time.Duration
	// Namespace is Tollgate's own namespace: never intercepted.
	Namespace string
	// Name names the webhook configurations (and the leader lease).
	Name string
	// ManageWebhooks makes the leader create and update the webhook
	// configurations; URL or Service says how the API server reaches us.
	ManageWebhooks bool
	URL            string
	Service        *admissionregistrationv1.ServiceReference
	// MutateTimeout and ValidateTimeout are the configurations'
	// timeoutSeconds; requests are answered within them.
	MutateTimeout, ValidateTimeout int32
	// Policies: the base modules and data, the config used when the
	// cluster has no TollgateConfig, and the TollgateConfig's name.
	Modules       []policies.Module
	Data          map[string]any
	Config        *policies.Config
	ConfigName    string
	PolicyTimeout time.Duration
	// LeaderElection makes one replica the leader for certificate
	// rotation, status writes and webhook configuration updates.
	LeaderElection bool
	// LeaseDuration, RenewDeadline and RetryPeriod time leader election:
	// a standby takes over at most LeaseDuration after the leader last
	// renewed; the leader stops its leader's work (and stands for election
	// again, serving admission all along) when it cannot renew for
	// RenewDeadline, such as while the API server is away. Zero keeps
	// client-go's usual values (15s, 10s, 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// ShutdownDelay keeps serving (not ready) this long after a stop
	// signal, so load balancers stop sending before the server goes.
	ShutdownDelay time.Duration
	// PprofAddress, when set, serves Go's /debug/pprof there (plain HTTP;
	// keep it on loopback) to find where a busy server spends its CPU.
	PprofAddress string
	// MemoryLimit is the Go runtime's soft memory limit in bytes (0:
	// none), capped at MemoryLimitShare of the container's memory limit
	// read under CgroupRoot (/sys/fs/cgroup) when that is set; GOMEMLIMIT
	// in the environment wins over both. Tests running servers in their
	// own process leave both unset and the runtime as it is.
	MemoryLimit int64
	CgroupRoot  string
	// Images configures image verification: the registry deadline (by
	// default half a second inside the request's), the verdict cache, and
	// whether plain-HTTP registries are allowed.
	Images imagesig.Options
	// Audit configures the background audit (on the leader).
	Audit AuditOptions
	// Version is the binary's, recorded on the reports the audit writes.
	Version string
	// Gatekeeper configures the Gatekeeper templates and constraints read
	// from the cluster.
	Gatekeeper GatekeeperOptions
	// Kyverno configures the Kyverno policies read from the cluster.
	Kyverno KyvernoOptions
	// ImageScan configures vulnerability scanning of the images pods run
	// (off unless Enabled).
	ImageScan ImageScanOptions
	// NamespaceDefaults configures the generated namespace defaults
	// (on unless Disabled).
	NamespaceDefaults NamespaceDefaultsOptions
	// FinOps configures budgets: prices, Prometheus, the scan interval
	// and alert routes. The zero value prices with OpenCost's defaults,
	// counts requests only and sends no alerts.
	FinOps FinOpsOptions
	// ClientAuth, when set, admits to /validate and /mutate only callers
	// with a client certificate from its CA and an allowed name (the API
	// server, configured with a kubeconfig for the webhook). When nil,
	// every caller is served and its decisions are logged as
	// unauthenticated, which the compliance report does not count as
	// evidence.
	ClientAuth *webhook.ClientAuthOptions
	// MetricsAuth is MetricsAuthKubernetes (the default) or
	// MetricsAuthNone.
	MetricsAuth string
	// MaxInFlight and MaxInFlightBytes bound each admission endpoint
	// (zero: the webhook package's defaults; negative: unbounded).
	MaxInFlight      int
	MaxInFlightBytes int64
	// VerdictCache is the byte budget of each policy engine's verdict
	// cache; 0 turns it off.
	VerdictCache int64
	// RateLimit and RateBurst, when RateLimit is above 0, are a token
	// bucket per admission endpoint (requests a second, burst).
	RateLimit float64
	RateBurst int
	// PolicySource, when set, is a policy set followed in a registry
	// (--policy-source): the server starts serving once a set verifies
	// and compiles, and each new one's Rego modules and data join the
	// base Modules and Data in place of the last. Its Registerer,
	// Logger, Check, OnUpdate and OnRefuse are the server's.
	PolicySource *ocisource.Options
	// DecisionLog receives one JSON line per decision.
	DecisionLog *webhook.DecisionLog
	Logger      *slog.Logger
	// Ready, when set, is called once the server answers admission
	// requests.
	Ready func()
}

// AuditOptions configure the background audit.
type AuditOptions struct {
	// Disabled turns it off.
	Disabled bool
	// Interval between full scans (default 10m); a change of policies,
	// exceptions or config triggers one sooner.
	Interval time.Duration
	// MaxResults caps the results of one report (default 1000).
	MaxResults int
	// ReportName names the Reports it writes (default "tollgate"): two
	// servers auditing one cluster, a canary beside the release, each
	// keep their own.
	ReportName string
}

// ImageScanOptions configure vulnerability scanning: the leader scans every
// image the cluster's pods run with Trivy and keeps the results in
// ImageScans; every replica reads them for admission and the audit
// (input.imageScans).
type ImageScanOptions struct {
	// Enabled turns scanning on (--scan-images).
	Enabled bool
	// Trivy configures the trivy binary, its cache, database repository
	// and, in client/server mode, the `trivy server` it asks (Server).
	Trivy trivy.Options
	// Interval is how often each digest is rescanned (default 24h); a new
	// database rescans sooner. Poll is how often pods are listed (default
	// 1m).
	Interval, Poll time.Duration
	// Concurrency is the scans run at once (default 2); Queue the digests
	// that may wait (default 256).
	Concurrency, Queue int
	// DBUpdateInterval is how often the database is downloaded (default
	// 6h; never in client/server mode, where the server keeps it).
	DBUpdateInterval time.Duration
	// MaxAge is the oldest database whose results count as current
	// (default 72h); older results are stale.
	MaxAge time.Duration
	// Retention is how long the scan of an image no pod runs is kept
	// (default 7 days).
	Retention time.Duration
	// Transport, when set, carries tag resolution's registry requests.
	Transport http.RoundTripper
}

// NamespaceDefaultsOptions configure the namespace defaults the leader
// generates from each namespace's profile (ResourceQuota, LimitRange,
// NetworkPolicy, Budget) and keeps in sync.
type NamespaceDefaultsOptions struct {
	// Disabled turns them off (--namespace-defaults=false): nothing is
	// generated, and what was generated stays as it is.
	Disabled bool
	// Resync is how often every namespace is reconciled besides the
	// changes watched (default 10m).
	Resync time.Duration
}

// GatekeeperOptions configure Gatekeeper templates and constraints.
type GatekeeperOptions struct {
	// NoConstraintCRDs leaves the CRDs of the templates' constraint kinds
	// to Gatekeeper, running beside (--gatekeeper-crds=false). By default
	// the leader creates them as Gatekeeper would.
	NoConstraintCRDs bool
}

// KyvernoOptions configure Kyverno policies.
type KyvernoOptions struct {
	// Beside says Kyverno's own admission controller runs in the cluster
	// (--kyverno-beside): Tollgate then judges at admission only the Kyverno
	// policies annotated tollgate.dev/engine: tollgate, and every Kyverno
	// policy in the audit, so no policy is judged twice at admission.
	Beside bool
}

// FinOpsOptions configure the budget scanner and budget-aware admission.
type FinOpsOptions struct {
	// Prices is the catalogue (nil: OpenCost's defaults).
	Prices *finops.Prices
	// PrometheusURL, when set, gives usage and node prices.
	PrometheusURL string
	// ScanInterval is how often spend is tallied (default 5m).
	ScanInterval time.Duration
	// Routes, when set, are where budget alerts go.
	Routes *alerts.Routes
	// Alerts tunes delivery (timeouts, retries; tests make them short).
	Alerts alerts.Options
	// Cluster names the cluster in alerts, the audit's Reports and its
	// facts (tollgate serve --cluster-name); the budget series carry it as
	// their cluster label, for a fleet Prometheus to tell clusters apart.
	Cluster string
	// FleetPrometheusURL makes this the central Tollgate: the Budgets
	// across clusters of this cluster are evaluated from the Prometheus
	// API there, which holds every cluster's budget series.
	FleetPrometheusURL string
	// Central, when set, is the central cluster's API server
	// (--fleet-central-kubeconfig): its Budgets across clusters that span
	// this cluster are mirrored here, read-only, every MirrorInterval.
	Central *rest.Config
	// CentralName names the central cluster in the mirrors (default
	// "central").
	CentralName    string
	MirrorInterval time.Duration
	// MaxVerdictAge is how old a Budget across clusters' verdict may be
	// before admission warns instead of denying on it (default
	// budget.DefaultMaxVerdictAge).
	MaxVerdictAge time.Duration
	// Disabled turns the scanner and budget-aware admission off.
	Disabled bool
}

// Validate checks the options and names the bad one.
func (o *Options) Validate() error {
	switch {
	case o.REST == nil:
		return errors.New("serve: no API server connection (--kubeconfig)")
	case o.Port <= 0 || o.Port > 65535:
		return fmt.Errorf("serve: --port %d is not a port", o.Port)
	case o.CertDir == "":
		return errors.New("serve: --cert-dir is required")
	case o.CertMode != CertModeSelf && o.CertMode != CertModeFiles:
		return fmt.Errorf("serve: --cert-mode %q: want %s or %s", o.CertMode, CertModeSelf, CertModeFiles)
	case o.Namespace == "":
		return errors.New("serve: --namespace is required")
	case o.ManageWebhooks && (o.URL == "") == (o.Service == nil):
		return errors.New("serve: managing webhook configurations needs exactly one of --webhook-url and --service-name")
	case o.MutateTimeout < 1 || o.MutateTimeout > 30 || o.ValidateTimeout < 1 || o.ValidateTimeout > 30:
		return errors.New("serve: webhook timeouts must be 1 to 30 seconds")
	case o.NamespaceDefaults.Resync < 0:
		return fmt.Errorf("serve: --namespace-defaults-resync %s must not be negative", o.NamespaceDefaults.Resync)
	case (o.FinOps.FleetPrometheusURL != "" || o.FinOps.Central != nil) && o.FinOps.Cluster == "":
		return errors.New("serve: --fleet-prometheus and --fleet-central-kubeconfig need --cluster-name: Budgets across clusters name the clusters they span")
	case o.FinOps.FleetPrometheusURL != "" && o.FinOps.Central != nil:
		return errors.New("serve: --fleet-prometheus (the central Tollgate) and --fleet-central-kubeconfig (an execution cluster's) exclude each other")
	case o.MetricsAuth != "" && o.MetricsAuth != MetricsAuthKubernetes && o.MetricsAuth != MetricsAuthNone:
		return fmt.Errorf("serve: --metrics-auth %q: want %s or %s", o.MetricsAuth, MetricsAuthKubernetes, MetricsAuthNone)
	}
	if o.ClientAuth != nil {
		if err := o.ClientAuth.Validate(); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if err := o.validateLease(); err != nil {
		return err
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("serve: --webhook-url %q: want https://host:port", o.URL)
		}
	}
	return nil
}

// validateLease checks the leader election timings as client-go's
// elector would, but names the flags.
func (o *Options) validateLease() error {
	lease, renew, retry := orDefault(o.LeaseDuration, 15*time.Second), orDefault(o.RenewDeadline, 10*time.Second), orDefault(o.RetryPeriod, 2*time.Second)
	switch {
	case o.LeaseDuration < 0 || o.RenewDeadline < 0 || o.RetryPeriod < 0:
		return errors.New("serve: leader election timings must not be negative")
	case lease <= renew:
		return fmt.Errorf("serve: --leader-elect-lease-duration %s must be longer than --leader-elect-renew-deadline %s", lease, renew)
	case float64(renew) <= 1.2*float64(retry):
		return fmt.Errorf("serve: --leader-elect-renew-deadline %s must be longer than 1.2 × --leader-elect-retry-period %s", renew, retry)
	}
	return nil
}

// orDefault is d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Run runs the admission server until ctx ends, then drains in-flight
// requests and returns.
func Run(ctx context.Context, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctrl.SetLogger(logr.FromSlogHandler(logger.Handler()))
	if opts.CgroupRoot != "" || opts.MemoryLimit > 0 {
		setMemoryLimit(opts.CgroupRoot, os.Getenv("GOMEMLIMIT"), opts.MemoryLimit, logger)
	}
	if opts.Name == "" {
		opts.Name = "tollgate"
	}
	if opts.CertSecret == "" {
		opts.CertSecret = opts.Name + "-webhook-tls"
	}
	scheme := webhook.Scheme()
	direct, err := client.New(opts.REST, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("connecting to the API server: %w", err)
	}

	// Tollgate's series in a registry of this server's own (tests run two
	// servers in one process); /metrics serves them with controller-runtime's.
	reg := prometheus.NewRegistry()
	metrics := webhook.NewMetrics(reg)
	// The client CA is read before anything starts: a bad file stops the
	// server with its path.
	var clientAuth *webhook.ClientAuth
	if opts.ClientAuth != nil {
		ca := *opts.ClientAuth
		ca.Metrics, ca.Logger = metrics, logger.With("component", "client-auth")
		if clientAuth, err = webhook.NewClientAuth(ca); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	} else {
		logger.Warn("no client CA: admission requests are not authenticated and their decisions are no evidence (--client-ca-file)")
	}
	// Certificates first: the HTTPS server cannot start without them.
	var rotator *certs.Rotator
	if opts.CertMode == CertModeSelf {
		if rotator, err = startCerts(ctx, direct, opts, logger); err != nil {
			return err
		}
	}

	srv := crwebhook.NewServer(crwebhook.Options{
		Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }, clientAuth.TLSConfig},
	})
	mgr, err := ctrl.NewManager(opts.REST, manager.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		PprofBindAddress:        opts.PprofAddress,
		WebhookServer:           srv,
		Cache:                   cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
		GracefulShutdownTimeout: ptr(30 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	mgr.GetWebhookServer() // adds srv to the manager's runnables
	// Leader election is Tollgate's own (leader.go): a lost lease stops
	// the leader's work, not the process.
	lead, err := newLeadership(opts, logger)
	if err != nil {
		return err
	}
	leader := lead.isLeader

	state := &review.Holder{}
	if err := RegisterVerdictCacheMetrics(reg, state); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	requestTimeout := time.Duration(min(opts.MutateTimeout, opts.ValidateTimeout))*time.Second - 500*time.Millisecond
	if opts.PolicyTimeout <= 0 || opts.PolicyTimeout > requestTimeout {
		opts.PolicyTimeout = requestTimeout // a policy's deadline sits inside the webhook's
	}
	if opts.Images.Timeout <= 0 || opts.Images.Timeout > requestTimeout-500*time.Millisecond {
		opts.Images.Timeout = max(requestTimeout-500*time.Millisecond, 500*time.Millisecond) // registry calls end before the request does
	}
	images := &review.ImageGate{
		Verifier:  imagesig.NewVerifier(opts.Images),
		Keychains: &webhook.PullSecrets{Reader: mgr.GetAPIReader()},
		Parallel:  4,
		Logger:    logger,
		Metrics:   metrics,
	}
	budgets, scanner, err := finOps(mgr, opts, state, reg, logger)
	if err != nil {
		return err
	}
	mirror, err := budgetMirror(mgr, opts, reg, logger)
	if err != nil {
		return err
	}
	scans, imageScanner, err := imageScanning(ctx, mgr, opts, reg, logger)
	if err != nil {
		return err
	}
	gates := []review.Evaluator{}
	if budgets != nil {
		gates = append(gates, budgets)
	}
	reviewer, err := webhook.NewReviewer(webhook.ReviewerOptions{
		Core:         review.New(review.Options{Images: images, Gates: gates, Parents: &webhook.Parents{Reader: mgr.GetAPIReader()}, Scans: scans}),
		State:        state,
		Namespaces:   &webhook.CachedNamespaces{Cache: mgr.GetCache(), Live: mgr.GetAPIReader()},
		OwnNamespace: opts.Namespace,
		Timeout:      requestTimeout,
		Metrics:      metrics,
		DecisionLog:  opts.DecisionLog,
		Logger:       logger,
		MaxInFlight:  opts.MaxInFlight, MaxInFlightBytes: opts.MaxInFlightBytes,
		RateLimit: opts.RateLimit, Burst: opts.RateBurst,
	})
	if err != nil {
		return err
	}

	auditor, err := newAuditor(mgr, opts, state, scans, reg, logger)
	if err != nil {
		return err
	}
	nsd, err := namespaceDefaults(mgr, opts, state, reg, logger)
	if err != nil {
		return err
	}
	gk, err := loader.NewGatekeeperFormat(loader.GatekeeperOptions{
		PolicyTimeout: opts.PolicyTimeout, CreateConstraintCRDs: !opts.Gatekeeper.NoConstraintCRDs, CRDs: direct,
		Leader: leader, Logger: logger.With("component", "gatekeeper"),
	})
	if err != nil {
		return err
	}
	// Kyverno's objects are listed and its ConfigMaps watched with a
	// client that logs each API warning once: the API server warns on every
	// request for kyverno.io/v1, which Kyverno has deprecated.
	kyREST := rest.CopyConfig(opts.REST)
	kyREST.WarningHandlerWithContext = crlog.NewKubeAPIWarningLogger(crlog.KubeAPIWarningLoggerOptions{Deduplicate: true})
	kyClient, err := client.NewWithWatch(kyREST, client.Options{Scheme: scheme, Mapper: mgr.GetRESTMapper()})
	if err != nil {
		return fmt.Errorf("connecting to the API server: %w", err)
	}
	ky := loader.NewKyvernoFormat(loader.KyvernoOptions{
		KyvernoAdmission: opts.Kyverno.Beside, Reader: kyClient, ConfigMaps: mgr.GetAPIReader(), Watcher: kyClient,
		Mapper: mgr.GetRESTMapper(), Logger: logger.With("component", "kyverno"),
	})
	// The policy set from the registry, when one is followed, is pulled
	// before the loader's first load: nothing is served without it.
	var ld *loader.Loader
	src, err := policySource(ctx, direct, mgr, opts, reg, logger, func(ctx context.Context, b loader.Base) error {
		if ld == nil {
			// The first set: the loader is not built yet, and starts with
			// it once it is.
			return loader.CheckBase(ctx, b, loader.CheckOptions{
				Scheme: direct.Scheme(), Mapper: mgr.GetRESTMapper(), Secrets: mgr.GetAPIReader(), PolicyTimeout: opts.PolicyTimeout,
			})
		}
		return ld.SetBase(ctx, b)
	})
	if err != nil {
		return err
	}
	base := withSet(opts, src.Current())
	ld, err = loader.New(loader.Options{
		Client: mgr.GetClient(), Cache: mgr.GetCache(),
		Base: base.Modules, BaseData: base.Data, BaseObjects: base.Objects, BaseDigest: base.Digest,
		FileConfig: base.Config, ConfigName: opts.ConfigName,
		PolicyTimeout: opts.PolicyTimeout, VerdictCache: opts.VerdictCache, State: state, WriteStatus: leader,
		Secrets: mgr.GetAPIReader(),
		Formats: []loader.Format{gk, loader.NewVAPFormat(loader.VAPOptions{Mapper: mgr.GetRESTMapper(), Logger: logger}), ky},
		Events:  eventRecorder{mgr.GetEventRecorder("tollgate")},
		Metrics: metrics, Logger: logger,
		OnLoad: func(ctx context.Context, st *review.Set) {
			if auditor != nil {
				auditor.Trigger() // policies, exceptions or config changed
			}
			if nsd != nil {
				nsd.Trigger() // a profile may have changed
			}
			if !opts.ManageWebhooks || !leader() {
				return
			}
			if err := applyConfigurations(ctx, direct, mgr.GetRESTMapper(), rotator, st, opts); err != nil {
				logger.ErrorContext(ctx, "updating webhook configurations failed", "error", err)
			}
		},
	})
	if err != nil {
		return err
	}
	// Every replica loads policies, keeps its certificate files and
	// watches its caches, leader or not: a standby must be ready to
	// serve admission, and serves it (controller-runtime would run a
	// runnable that does not say otherwise on the leader only).
	if err := mgr.Add(everyReplica(ld.Start)); err != nil {
		return fmt.Errorf("adding the loader: %w", err)
	}
	if src != nil {
		if err := mgr.Add(everyReplica(src.Run)); err != nil {
			return fmt.Errorf("adding the policy source: %w", err)
		}
	}
	if rotator != nil {
		interval := opts.CertCheckInterval
		if interval == 0 {
			interval = time.Minute
		}
		if err := mgr.Add(everyReplica(func(ctx context.Context) error {
			rotator.Run(ctx, leader, interval)
			return nil
		})); err != nil {
			return fmt.Errorf("adding the certificate rotator: %w", err)
		}
	}
	// The elected leader reloads at once, to write what only the leader
	// writes (constraint CRDs, Events on what did not load).
	if opts.LeaderElection {
		lead.add(func(ctx context.Context) error {
			ld.Trigger()
			<-ctx.Done()
			return nil
		})
	}
	// The elected leader brings the configurations up to date at once.
	if opts.ManageWebhooks && opts.LeaderElection {
		lead.add(func(ctx context.Context) error {
			if st := state.Load(); st != nil {
				if err := applyConfigurations(ctx, direct, mgr.GetRESTMapper(), rotator, st, opts); err != nil {
					logger.ErrorContext(ctx, "updating webhook configurations failed", "error", err)
				}
			}
			<-ctx.Done()
			return nil
		})
	}

	// Namespaces are read on every request: their informer starts with the
	// manager, not on the first request, and readiness waits for it; so do
	// Budgets, for budget-aware admission.
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Namespace{}); err != nil {
		return fmt.Errorf("watching namespaces: %w", err)
	}
	// The controllers a Pod, ReplicaSet or Job may name are looked up on
	// every review of one: their metadata informers start now too, so the
	// first reviews read the cache rather than wait for it to sync.
	for _, gk := range policies.ControllerKinds() {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(schema.GroupVersionKind{Group: gk[0], Version: "v1", Kind: gk[1]})
		if _, err := mgr.GetCache().GetInformer(ctx, m); err != nil {
			return fmt.Errorf("watching %s, the controllers objects name: %w", gk[1], err)
		}
	}
	if auditor != nil {
		lead.add(auditor.Run)
	}
	if scanner != nil {
		if _, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.Budget{}); err != nil {
			return fmt.Errorf("watching Budgets: %w", err)
		}
		// One replica tallies spend and sends alerts: the leader.
		lead.add(scanner.Run)
	}
	if mirror != nil {
		// One replica mirrors the central Budgets: the leader.
		lead.add(mirror.Run)
	}
	if imageScanner != nil {
		// One replica scans: the leader.
		lead.add(imageScanner.Run)
	}
	if nsd != nil {
		// One replica generates namespace defaults: the leader.
		lead.add(nsd.Run)
	}
	if err := mgr.Add(lead); err != nil {
		return fmt.Errorf("adding leader election: %w", err)
	}
	var stopping, synced atomic.Bool
	if err := mgr.Add(everyReplica(func(ctx context.Context) error {
		synced.Store(mgr.GetCache().WaitForCacheSync(ctx))
		return nil
	})); err != nil {
		return err
	}
	ready := func() error {
		switch {
		case stopping.Load():
			return errors.New("shutting down")
		case state.Load() == nil:
			return errors.New("policies not loaded")
		case !synced.Load():
			return errors.New("namespace cache not synced")
		}
		if rotator != nil {
			return rotator.Check(nil)
		}
		return nil
	}
	// mgrCtx ends after the shutdown delay: the manager stops its
	// runnables, the webhook server among them, which stops accepting and
	// waits for the reviews in flight.
	mgrCtx, stopMgr := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMgr()
	srv.Register("/mutate", keepThroughShutdown(mgrCtx, clientAuth.Wrap(webhook.WebhookMutate, reviewer.Handler(webhook.WebhookMutate, reviewer.Mutate))))
	srv.Register("/validate", keepThroughShutdown(mgrCtx, clientAuth.Wrap(webhook.WebhookValidate, reviewer.Handler(webhook.WebhookValidate, reviewer.Validate))))
	srv.Register("/version", versionHandler(opts.Version, src))
	srv.Register("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	srv.Register("/readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	metricsHandler, err := protectMetrics(opts, mgr.GetHTTPClient(), logger,
		promhttp.HandlerFor(prometheus.Gatherers{reg, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
	if err != nil {
		return err
	}
	srv.Register("/metrics", metricsHandler)

	go func() {
		<-ctx.Done()
		stopping.Store(true)
		logger.Info("stopping: not ready, draining", "delay", opts.ShutdownDelay)
		time.Sleep(opts.ShutdownDelay)
		stopMgr()
	}()
	if opts.Ready != nil {
		go func() {
			if waitReady(mgrCtx, opts, ready) == nil {
				opts.Ready()
			}
		}()
	}
	logger.Info("serving admission", "host", opts.Host, "port", opts.Port, "namespace", opts.Namespace)
	if err := mgr.Start(mgrCtx); err != nil {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}

// keepThroughShutdown gives h a request context that stopping the server
// does not cancel, so that a review in flight when the server stops is
// answered rather than cut short. controller-runtime's webhook server bases
// every request's context on the context it runs with, which the manager
// cancels when it stops, at the moment the server begins its graceful
// shutdown. serving ends just before that. While serving lasts, a client
// that goes away still cancels its request; once it has ended the two
// cannot be told apart, and a review runs to its own deadline (the
// reviewer's timeout, inside the webhook's).
func keepThroughShutdown(serving context.Context, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
		defer cancel()
		stop := context.AfterFunc(r.Context(), func() {
			if serving.Err() == nil {
				cancel()
			}
		})
		defer stop()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// waitReady polls readiness and then the HTTPS endpoint itself.
func waitReady(ctx context.Context, opts Options, ready func() error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	addr := net.JoinHostPort(opts.Host, fmt.Sprint(opts.Port))
	if opts.Host == "" || opts.Host == "0.0.0.0" {
		addr = net.JoinHostPort("127.0.0.1", fmt.Sprint(opts.Port))
	}
	for {
		if ready() == nil {
			conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a liveness probe of our own port
			if err == nil {
				_ = conn.Close()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func startCerts(ctx context.Context, c client.Client, opts Options, logger *slog.Logger) (*certs.Rotator, error) {
	if err := ensureNamespace(ctx, c, opts.Namespace); err != nil {
		return nil, err
	}
	var dns []string
	var ips []net.IP
	if opts.Service != nil {
		dns = append(dns, opts.Service.Name+"."+opts.Service.Namespace+".svc", opts.Service.Name+"."+opts.Service.Namespace+".svc.cluster.local")
	}
	if opts.URL != "" {
		u, _ := url.Parse(opts.URL)
		if ip := net.ParseIP(u.Hostname()); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, u.Hostname())
		}
	}
	if len(dns) == 0 && len(ips) == 0 {
		ips = []net.IP{net.ParseIP("127.0.0.1")}
	}
	r, err := certs.New(certs.Options{
		Client: c, Namespace: opts.Namespace, SecretName: opts.CertSecret,
		DNSNames: dns, IPAddresses: ips, CertDir: opts.CertDir,
		CAValidity: opts.CAValidity, CertValidity: opts.CertValidity, PublishGrace: opts.CAPublishGrace,
		MutatingWebhooks: []string{opts.Name}, ValidatingWebhooks: []string{opts.Name},
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	// Without leader election this replica is the leader; with it, the
	// first replica may have to create the Secret before anyone is elected.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := r.Reconcile(ctx); err != nil {
			logger.Warn("certificate reconcile failed; retrying", "error", err)
		}
		if err := r.Sync(ctx); err == nil {
			return r, nil
		} else if time.Now().After(deadline) {
			return nil, fmt.Errorf("serving certificate: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		var existing corev1.Namespace
		if gerr := c.Get(ctx, client.ObjectKey{Name: name}, &existing); gerr == nil {
			return nil // it exists; we may just not be allowed to create namespaces
		}
		return fmt.Errorf("namespace %s: %w", name, err)
	}
	return nil
}

func applyConfigurations(ctx context.Context, c client.Client, mapper meta.RESTMapper, rotator *certs.Rotator, st *review.Set, opts Options) error {
	var bundle []byte
	if rotator != nil {
		var err error
		if bundle, err = rotator.CABundle(ctx); err != nil {
			return err
		}
	}
	mwc, vwc, err := webhook.Configurations(st, mapper, webhook.ConfigurationOptions{
		Name: opts.Name, URL: opts.URL, Service: opts.Service, CABundle: bundle,
		OwnNamespace: opts.Namespace, MutateTimeout: opts.MutateTimeout, ValidateTimeout: opts.ValidateTimeout,
	})
	if err != nil {
		return err
	}
	return webhook.ApplyConfigurations(ctx, c, mwc, vwc)
}

func ptr[T any](v T) *T { return &v }

// eventRecorder records the loader's Events with the events.k8s.io API
// (controller-runtime's GetEventRecorderFor, of the core API, is
// deprecated).
type eventRecorder struct{ events.EventRecorder }

var _ loader.EventRecorder = eventRecorder{}

// Eventf implements loader.EventRecorder.
func (r eventRecorder) Eventf(obj client.Object, eventtype, reason, messageFmt string, args ...any) {
	r.EventRecorder.Eventf(obj, nil, eventtype, reason, "Load", messageFmt, args...)
}

// everyReplica runs f on every replica, whether it leads or not.
type everyReplica func(ctx context.Context) error

var _ manager.LeaderElectionRunnable = everyReplica(nil)

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (everyReplica) NeedLeaderElection() bool { return false }

// withPrices is the policies' data with the price catalogue's cloud
// classes under tollgate.prices (see finops.Prices.PolicyData), which the
// library's cloud-instance-size policy reads; data is not modified.
func withPrices(data map[string]any, fo FinOpsOptions) map[string]any {
	if fo.Disabled {
		return data
	}
	prices := fo.Prices
	if prices == nil {
		prices = finops.DefaultPrices()
	}
	out := maps.Clone(data)
	if out == nil {
		out = map[string]any{}
	}
	tg, _ := out["tollgate"].(map[string]any)
	tg = maps.Clone(tg)
	if tg == nil {
		tg = map[string]any{}
	}
	tg["prices"] = prices.PolicyData()
	out["tollgate"] = tg
	return out
}

// finOps builds budget-aware admission and the budget scanner from the
// options; both nil when FinOps is disabled.
func finOps(mgr manager.Manager, opts Options, state *review.Holder, reg prometheus.Registerer, logger *slog.Logger) (*budget.Gate, *budget.Scanner, error) {
	fo := opts.FinOps
	if fo.Disabled {
		return nil, nil, nil
	}
	prices := fo.Prices
	if prices == nil {
		prices = finops.DefaultPrices()
	}
	est, err := finops.NewEstimator(finops.EstimateOptions{Prices: prices})
	if err != nil {
		return nil, nil, fmt.Errorf("finops: %w", err)
	}
	model, err := finops.NewModel(finops.ModelOptions{Prices: prices, TopWorkloads: 5})
	if err != nil {
		return nil, nil, fmt.Errorf("finops: %w", err)
	}
	var src *usage.Source
	if fo.PrometheusURL != "" {
		if src, err = usage.New(fo.PrometheusURL, usage.Options{}); err != nil {
			return nil, nil, fmt.Errorf("finops: --prometheus: %w", err)
		}
	}
	var alerter budget.Alerter
	if fo.Routes != nil {
		ao := fo.Alerts
		ao.Routes = *fo.Routes
		ao.Logger = logger
		ao.Secrets = func(ctx context.Context, namespace, name, key string) ([]byte, error) {
			var s corev1.Secret
			if err := mgr.GetAPIReader().Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
				return nil, err
			}
			v, ok := s.Data[key]
			if !ok {
				return nil, fmt.Errorf("secret %s/%s has no key %q", namespace, name, key)
			}
			return v, nil
		}
		if ao.Observer == nil {
			ao.Observer = alerts.NewMetrics(reg)
		}
		n, err := alerts.New(ao)
		if err != nil {
			return nil, nil, fmt.Errorf("finops: alert routes: %w", err)
		}
		alerter = budget.NotifierAlerter(n)
	}
	// The gate and the scanner price the governed kinds of the config in
	// force, so a claim counted at admission stays counted once it exists.
	governed := func() []policies.GovernedKind {
		if st := state.Load(); st != nil {
			return st.Engine.Config().GovernedKinds
		}
		return nil
	}
	var fleet *budget.Fleet
	if fo.FleetPrometheusURL != "" {
		if fleet, err = budget.NewFleet(fo.FleetPrometheusURL, budget.FleetOptions{}); err != nil {
			return nil, nil, fmt.Errorf("finops: --fleet-prometheus: %w", err)
		}
	}
	// The budget series carry the cluster's name, so a Prometheus holding
	// several clusters' tells them apart.
	budgetReg := reg
	if fo.Cluster != "" {
		budgetReg = prometheus.WrapRegistererWith(prometheus.Labels{"cluster": fo.Cluster}, reg)
	}
	scanner, err := budget.New(budget.Options{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Model: model, Currency: prices.Currency,
		Governed: governed, Mapper: mgr.GetRESTMapper(),
		Usage: src, Alerter: alerter, Interval: fo.ScanInterval, Cluster: fo.Cluster, Fleet: fleet,
		Registerer: budgetReg, Logger: logger.With("component", "budgets"),
	})
	if err != nil {
		return nil, nil, err
	}
	return &budget.Gate{Budgets: mgr.GetClient(), Estimator: est, Nodes: &budget.NodeCount{Reader: mgr.GetClient()}, Governed: governed,
		Cluster: fo.Cluster, MaxVerdictAge: fo.MaxVerdictAge}, scanner, nil
}

// budgetMirror builds the mirror of the central cluster's Budgets across
// clusters; nil unless --fleet-central-kubeconfig is given.
func budgetMirror(mgr manager.Manager, opts Options, reg prometheus.Registerer, logger *slog.Logger) (*budget.Mirror, error) {
	fo := opts.FinOps
	if fo.Disabled || fo.Central == nil {
		return nil, nil
	}
	central, err := client.New(fo.Central, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, fmt.Errorf("finops: --fleet-central-kubeconfig: %w", err)
	}
	return budget.NewMirror(budget.MirrorOptions{
		Central: central, Local: mgr.GetClient(), Cluster: fo.Cluster, CentralName: fo.CentralName,
		Interval: fo.MirrorInterval, Registerer: reg, Logger: logger.With("component", "budget-mirror"),
	})
}

// namespaceDefaults builds the controller of generated namespace
// defaults, reading profiles from the config in force; nil when disabled.
func namespaceDefaults(mgr manager.Manager, opts Options, state *review.Holder, reg prometheus.Registerer, logger *slog.Logger) (*nsdefaults.Controller, error) {
	if opts.NamespaceDefaults.Disabled {
		return nil, nil
	}
	return nsdefaults.New(nsdefaults.Options{
		REST: opts.REST, Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(),
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(),
		Config: func() *policies.Config {
			if st := state.Load(); st != nil && st.Engine != nil {
				return st.Engine.Config()
			}
			return nil
		},
		Namespace: opts.Namespace, Resync: opts.NamespaceDefaults.Resync,
		Events:  mgr.GetEventRecorder("tollgate"),
		Metrics: nsdefaults.NewMetrics(reg), Logger: logger.With("component", "namespace-defaults"),
	})
}

// newAuditor builds the background audit over the set the loader keeps,
// judging with the image scans of scans (nil: none); nil when disabled.
func newAuditor(mgr manager.Manager, opts Options, state *review.Holder, scans vuln.Source, reg prometheus.Registerer, logger *slog.Logger) (*audit.Auditor, error) {
	if opts.Audit.Disabled {
		return nil, nil
	}
	var reviewer *review.Reviewer
	if scans != nil {
		reviewer = review.New(review.Options{Scans: scans})
	}
	return audit.New(audit.Options{
		Reviewer: reviewer,
		Reader:   mgr.GetAPIReader(), Mapper: mgr.GetRESTMapper(),
		Policies: state.Load,
		Sink: &audit.ReportWriter{Client: mgr.GetClient(), Mapper: mgr.GetRESTMapper(), MaxResults: opts.Audit.MaxResults, Name: opts.Audit.ReportName,
			ScannerVersion: opts.Version, LibraryVersion: library.Version, Cluster: opts.FinOps.Cluster},
		Skip: []string{opts.Namespace}, Interval: opts.Audit.Interval,
		Facts:      clusterFacts(opts.REST, opts.FinOps.Cluster, opts.DecisionLog),
		Registerer: reg, Logger: logger.With("component", "audit"),
	})
}

// imageScanning builds the scan store every replica answers admission and
// the audit from, and the scanner the leader runs; both nil when scanning
// is off. The store's informer starts now, so the first reviews read it
// rather than wait for it.
func imageScanning(ctx context.Context, mgr manager.Manager, opts Options, reg prometheus.Registerer, logger *slog.Logger) (vuln.Source, *imagescan.Scanner, error) {
	o := opts.ImageScan
	if !o.Enabled {
		return nil, nil, nil
	}
	runner, err := trivy.New(o.Trivy)
	if err != nil {
		return nil, nil, fmt.Errorf("image scanning: %w", err)
	}
	metrics := imagescan.NewMetrics(reg)
	store, err := imagescan.NewStore(imagescan.StoreOptions{
		Reader: mgr.GetClient(), Writer: mgr.GetClient(), MaxAge: o.MaxAge, Queue: o.Queue,
		Metrics: metrics, Logger: logger.With("component", "image-scans"),
	})
	if err != nil {
		return nil, nil, err
	}
	if err := mgr.Add(everyReplica(store.Start)); err != nil {
		return nil, nil, fmt.Errorf("adding the image scan store: %w", err)
	}
	var updater imagescan.Updater
	if o.Trivy.Server == "" {
		updater = runner // in client/server mode the server keeps the database
	}
	scanner, err := imagescan.New(imagescan.Options{
		Client: mgr.GetClient(), Live: mgr.GetAPIReader(), Scanner: runner, Updater: updater,
		Keychains: &webhook.PullSecrets{Reader: mgr.GetAPIReader()}, Namespace: opts.Namespace,
		Interval: o.Interval, Poll: o.Poll, Concurrency: o.Concurrency, Queue: o.Queue,
		DBUpdateInterval: o.DBUpdateInterval, MaxAge: o.MaxAge, Retention: o.Retention,
		Insecure: o.Trivy.Insecure || opts.Images.Insecure, Transport: o.Transport,
		Metrics: metrics, Logger: logger.With("component", "image-scanner"),
	})
	if err != nil {
		return nil, nil, err
	}
	inf, err := mgr.GetCache().GetInformer(ctx, &v1alpha1.ImageScan{})
	if err != nil {
		return nil, nil, fmt.Errorf("watching ImageScans: %w", err)
	}
	// An ImageScan created by admission is looked at on the leader's next
	// pass, not its next poll.
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { scanner.Trigger() },
	}); err != nil {
		return nil, nil, fmt.Errorf("watching ImageScans: %w", err)
	}
	return store, scanner, nil
}

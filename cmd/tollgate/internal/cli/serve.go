package cli

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/serve"
	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/finops/alerts"
	"github.com/tollgate-dev/tollgate/finops/budget"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/scanners/trivy"
	"github.com/tollgate-dev/tollgate/webhook"
)

type serveFlags struct {
	policyFlags
	kubeconfig                     string
	host                           string
	port                           int
	certDir, certMode, certSecret  string
	caValidity, certValidity       time.Duration
	caPublishGrace                 time.Duration
	namespace, name, configName    string
	webhookURL, serviceName        string
	servicePort                    int32
	manageWebhooks, leaderElect    bool
	leaseDuration, renewDeadline   time.Duration
	retryPeriod                    time.Duration
	mutateTimeout, validateTimeout int32
	shutdownDelay                  time.Duration
	decisionLog, logLevel          string
	pprofAddress                   string
	gcPercent                      int
	memoryLimit                    string
	imageTimeout, imageCacheTTL    time.Duration
	imageCacheSize                 int
	insecureRegistries             bool
	finops, audit                  bool
	auditInterval                  time.Duration
	nsDefaults                     bool
	nsDefaultsResync               time.Duration
	auditMaxResults                int
	auditReportName                string
	prices, prometheusURL          string
	alertRoutes, clusterName       string
	fleetPrometheus, fleetCentral  string
	fleetCentralName               string
	fleetMirrorInterval            time.Duration
	fleetVerdictMaxAge             time.Duration
	scanInterval                   time.Duration
	gatekeeperCRDs                 bool
	kyvernoBeside                  bool
	clientCAFile                   string
	clientNames                    []string
	metricsAuth                    string
	maxInFlight                    int
	maxInFlightBytes               string
	verdictCache                   string
	decisionLogKeyFile             string
	rateLimit                      float64
	rateBurst                      int
	scanImages                     bool
	trivyBin, trivyServer          string
	trivyDBRepository, trivyCache  string
	imageScanInterval, dbUpdate    time.Duration
	dbMaxAge, scanRetention        time.Duration
	scanConcurrency, scanQueue     int
	source                         sourceFlags
}

func newServeCmd(stdio IO) *cobra.Command {
	var f serveFlags
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook server (mutate, validate) against a cluster",
		Long: `serve runs Tollgate's admission webhooks over HTTPS: /mutate injects ownership
labels, a hardened security context and resource defaults; /validate judges
the final object with the policy engine. Policies, config and exceptions are
read from the cluster (TollgatePolicy, TollgateConfig, TollgateException) and
hot-reloaded, and so are Gatekeeper ConstraintTemplates and Constraints. /healthz, /readyz, /version and /metrics are served on the same port.

With --policy-source oci://HOST/REPO:TAG the server follows a policy set
pushed with tollgate policy push: each new digest is verified against
--policy-source-key before it is read, and its Rego and data join the
built-in library; a set that does not verify, read or compile is refused and
the last good one stays (see docs/policy-distribution.md).

With --client-ca-file and --client-name, /mutate and /validate answer only
the API server: a caller without a client certificate from that CA naming an
allowed client gets 401 or 403 and is not reviewed (the CA file is reloaded
when it changes). Without them every caller is served and its decisions are
logged as unauthenticated, which tollgate report does not count as evidence.
/metrics asks for a bearer token the API server authenticates and
authorizes for get on /metrics (--metrics-auth=none turns that off).

With --cert-mode=self (the default) Tollgate runs its own CA, rotates it and
the serving certificate, and patches caBundle in the webhook configurations;
with --cert-mode=files the files in --cert-dir come from elsewhere
(cert-manager) and are reloaded when they change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd, &f, stdio)
		},
	}
	f.register(c)
	f.source.register(c, true)
	fl := c.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; in-cluster config when empty")
	fl.StringVar(&f.host, "host", "0.0.0.0", "address to listen on")
	fl.IntVar(&f.port, "port", 9443, "HTTPS port")
	fl.StringVar(&f.certDir, "cert-dir", "/tmp/tollgate/certs", "directory holding tls.crt and tls.key")
	fl.StringVar(&f.certMode, "cert-mode", serve.CertModeSelf, "self (own CA with rotation) or files (certificates provided, e.g. by cert-manager)")
	fl.StringVar(&f.certSecret, "cert-secret", "", "Secret holding the self-managed CA and certificate (default <name>-webhook-tls)")
	fl.DurationVar(&f.caValidity, "ca-validity", 0, "validity of the self-managed CA (default 1 year)")
	fl.DurationVar(&f.certValidity, "cert-validity", 0, "validity of the serving certificate (default 90 days)")
	fl.DurationVar(&f.caPublishGrace, "ca-publish-grace", 0, "wait after publishing a new CA before serving certificates it signed (default 1m)")
	fl.StringVar(&f.namespace, "namespace", envOr("POD_NAMESPACE", "tollgate-system"), "Tollgate's own namespace (never intercepted)")
	fl.StringVar(&f.name, "name", "tollgate", "name of the webhook configurations and the leader lease")
	fl.StringVar(&f.configName, "config-name", "tollgate", "name of the TollgateConfig object to use")
	fl.StringVar(&f.webhookURL, "webhook-url", "", "base URL the API server calls (https://127.0.0.1:9443), instead of a Service")
	fl.StringVar(&f.serviceName, "service-name", "", "Service in --namespace the API server calls")
	fl.Int32Var(&f.servicePort, "service-port", 443, "port of --service-name")
	fl.BoolVar(&f.manageWebhooks, "manage-webhook-configurations", true, "create and update the webhook configurations")
	fl.StringVar(&f.pprofAddress, "pprof-address", "", "serve Go's /debug/pprof on this address, e.g. 127.0.0.1:6060 (plain HTTP: keep it on loopback); off when empty")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect one replica for certificate rotation, status writes and configuration updates")
	fl.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", 15*time.Second, "how long a standby waits after the leader's last renewal before taking over")
	fl.DurationVar(&f.renewDeadline, "leader-elect-renew-deadline", 10*time.Second, "how long the leader tries to renew before it stops the leader's work (admission goes on) and stands for election again")
	fl.DurationVar(&f.retryPeriod, "leader-elect-retry-period", 2*time.Second, "how often candidates try to acquire or renew the lease")
	fl.Int32Var(&f.mutateTimeout, "mutate-timeout", 3, "timeoutSeconds of the mutating webhook")
	fl.Int32Var(&f.validateTimeout, "validate-timeout", 5, "timeoutSeconds of the validating webhook")
	fl.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "keep serving (not ready) this long after SIGTERM")
	fl.StringVar(&f.decisionLog, "decision-log", "-", "decision log file (JSON lines); - for stdout, empty for none")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.DurationVar(&f.imageTimeout, "image-timeout", 0, "deadline of the registry calls verifying one image (default: half a second inside the webhook timeout)")
	fl.DurationVar(&f.imageCacheTTL, "image-cache-ttl", 10*time.Minute, "how long a verified image digest stays verified without asking the registry again")
	fl.IntVar(&f.imageCacheSize, "image-cache-size", 10000, "verdicts kept in the image verification cache")
	fl.BoolVar(&f.insecureRegistries, "allow-insecure-registries", false, "allow plain-HTTP registries (local development only; signatures are still verified)")
	fl.BoolVar(&f.audit, "audit", true, "audit everything the policies match in the background (on the leader) and write PolicyReports")
	fl.DurationVar(&f.auditInterval, "audit-interval", 10*time.Minute, "how often the background audit rescans (changes to policies, exceptions or config rescan sooner)")
	fl.BoolVar(&f.nsDefaults, "namespace-defaults", true, "generate each namespace's ResourceQuota, LimitRange, NetworkPolicy and Budget from its profile and keep them in sync (on the leader)")
	fl.DurationVar(&f.nsDefaultsResync, "namespace-defaults-resync", 10*time.Minute, "how often every namespace's generated defaults are reconciled (changes to namespaces, to the objects and to profiles are reconciled at once)")
	fl.IntVar(&f.auditMaxResults, "audit-max-results", 1000, "results kept in one PolicyReport (its summary counts them all)")
	fl.StringVar(&f.auditReportName, "audit-report-name", "tollgate", "name of the Reports the audit writes in each namespace (a second server on the cluster, such as a canary, keeps its own)")
	fl.BoolVar(&f.finops, "finops", true, "tally spend against Budgets (on the leader) and check changes against them at admission")
	fl.StringVar(&f.prices, "prices", "", "price catalogue file (OpenCost custom-pricing keys; default: OpenCost's defaults, USD)")
	fl.StringVar(&f.prometheusURL, "prometheus", "", "Prometheus URL for usage and node prices (default: requests only)")
	fl.DurationVar(&f.scanInterval, "budget-scan-interval", 5*time.Minute, "how often spend is added to Budgets")
	fl.StringVar(&f.alertRoutes, "alert-routes", "", "budget alert routes file: the default channel and channels (slack, teams, cloudevents) with webhook URLs in Secrets")
	fl.StringVar(&f.clusterName, "cluster-name", "", "the cluster's name in budget alerts, decision-log lines and the audit's Reports")
	fl.StringVar(&f.fleetPrometheus, "fleet-prometheus", "", "central cluster only: Prometheus API holding every cluster's budget series (federated, or Thanos, Mimir or a central Prometheus); Budgets across clusters (spec.scope.clusters) here are evaluated from it")
	fl.StringVar(&f.fleetCentral, "fleet-central-kubeconfig", "", "execution clusters only: kubeconfig of the central cluster, whose Budgets across clusters spanning this one are mirrored here (read-only) for admission")
	fl.StringVar(&f.fleetCentralName, "fleet-central-name", "central", "the central cluster's name in the mirrors' label and status")
	fl.DurationVar(&f.fleetMirrorInterval, "fleet-mirror-interval", time.Minute, "how often the central cluster's Budgets are mirrored")
	fl.DurationVar(&f.fleetVerdictMaxAge, "fleet-verdict-max-age", budget.DefaultMaxVerdictAge, "how old a Budget across clusters' verdict may be before admission warns instead of denying on it")
	fl.BoolVar(&f.kyvernoBeside, "kyverno-beside", false, "Kyverno's own admission controller runs in the cluster: judge at admission only the Kyverno policies annotated tollgate.dev/engine=tollgate (every Kyverno policy is still judged in the audit)")
	fl.BoolVar(&f.gatekeeperCRDs, "gatekeeper-crds", true, "create the CRD of each Gatekeeper ConstraintTemplate's constraint kind, as Gatekeeper does (on the leader); false when Gatekeeper runs beside and creates them")
	fl.IntVar(&f.gcPercent, "gc-percent", 400, "Go GC target percentage (GOGC, which wins when set); higher trades memory for CPU")
	fl.StringVar(&f.clientCAFile, "client-ca-file", "", "PEM CA bundle that signs the API server's client certificate; when set, /mutate and /validate refuse callers without a certificate from it (reloaded when the file changes)")
	fl.StringArrayVar(&f.clientNames, "client-name", nil, "allowed common name or DNS name of the API server's client certificate; repeatable, required with --client-ca-file")
	fl.StringVar(&f.metricsAuth, "metrics-auth", serve.MetricsAuthKubernetes, "protection of /metrics: kubernetes (bearer token checked with TokenReview, get /metrics allowed by SubjectAccessReview) or none")
	fl.IntVar(&f.maxInFlight, "max-in-flight", webhook.DefaultMaxInFlight, "admission requests each endpoint answers at once; beyond it a fast 429 (negative: unbounded)")
	fl.StringVar(&f.verdictCache, "verdict-cache", "32Mi", "memory for cached verdicts of policies on the input values they read (an object judged before, such as a Pod from a judged template, is not evaluated again); emptied whenever policies or config change; 0 turns it off")
	fl.StringVar(&f.maxInFlightBytes, "max-in-flight-bytes", "32Mi", "request bytes each endpoint holds at once; beyond it a fast 429 (at least 7Mi, the largest request; 0 for unbounded)")
	fl.Float64Var(&f.rateLimit, "rate-limit", 0, "admission requests a second each endpoint accepts on average (token bucket; beyond it a fast 429); 0: no limit")
	fl.IntVar(&f.rateBurst, "rate-burst", 0, "requests above --rate-limit accepted at once (default twice the rate)")
	fl.StringVar(&f.decisionLogKeyFile, "decision-log-key-file", "", "secret key keying the decision log's hash chain (HMAC-SHA256); give the same file to tollgate report")
	fl.StringVar(&f.memoryLimit, "memory-limit", "128Mi", "soft limit of the Go heap (GOMEMLIMIT, which wins when set), capped at 90% of the container's memory limit: the GC works harder near it, so keep it above the live heap (about 40Mi plus --verdict-cache); 0 for the container's cap alone")
	fl.BoolVar(&f.scanImages, "scan-images", false, "scan every image the cluster's pods run for vulnerabilities with Trivy (on the leader), keep the results in ImageScans and give them to policies as input.imageScans")
	fl.StringVar(&f.trivyBin, "trivy", "trivy", "the trivy executable --scan-images runs")
	fl.StringVar(&f.trivyServer, "trivy-server", "", "URL of a `trivy server` that holds the vulnerability database (client/server mode); the database is then never downloaded here")
	fl.StringVar(&f.trivyDBRepository, "trivy-db-repository", trivy.DefaultDBRepository, "OCI repository of Trivy's vulnerability database (a mirror for air-gapped clusters)")
	fl.StringVar(&f.trivyCache, "trivy-cache-dir", "/var/cache/tollgate/trivy", "directory holding Trivy's database and layer cache")
	fl.DurationVar(&f.imageScanInterval, "scan-interval", 24*time.Hour, "how often each image digest is rescanned (a new vulnerability database rescans sooner)")
	fl.IntVar(&f.scanConcurrency, "scan-concurrency", 2, "image scans run at once")
	fl.IntVar(&f.scanQueue, "scan-queue", 256, "digests that may wait for a scan, and images admission may queue; beyond it they are dropped (counted) and found by the next pod listing")
	fl.DurationVar(&f.dbUpdate, "db-update-interval", 6*time.Hour, "how often the vulnerability database is downloaded (not in client/server mode)")
	fl.DurationVar(&f.dbMaxAge, "db-max-age", 72*time.Hour, "the oldest vulnerability database whose results count as current; older results are stale (condition Stale, status stale in input.imageScans)")
	fl.DurationVar(&f.scanRetention, "scan-retention", 7*24*time.Hour, "how long the ImageScan of an image no pod runs is kept")
	return c
}

// imageScan reads the scanning flags, naming the one that is wrong.
func (f *serveFlags) imageScan() (serve.ImageScanOptions, error) {
	o := serve.ImageScanOptions{
		Enabled: f.scanImages,
		Trivy: trivy.Options{Binary: f.trivyBin, CacheDir: f.trivyCache, DBRepository: f.trivyDBRepository, Server: f.trivyServer,
			Insecure: f.insecureRegistries, SBOM: true},
		Interval: f.imageScanInterval, Concurrency: f.scanConcurrency, Queue: f.scanQueue,
		DBUpdateInterval: f.dbUpdate, MaxAge: f.dbMaxAge, Retention: f.scanRetention,
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--scan-interval", f.imageScanInterval}, {"--db-update-interval", f.dbUpdate}, {"--db-max-age", f.dbMaxAge}, {"--scan-retention", f.scanRetention}} {
		if d.v <= 0 {
			return o, fmt.Errorf("%s %s: want a positive duration", d.flag, d.v)
		}
	}
	if f.scanConcurrency < 1 || f.scanConcurrency > 64 {
		return o, fmt.Errorf("--scan-concurrency %d: want 1 to 64", f.scanConcurrency)
	}
	if f.scanQueue < 1 || f.scanQueue > 1<<20 {
		return o, fmt.Errorf("--scan-queue %d: want 1 to 1048576", f.scanQueue)
	}
	if !f.scanImages {
		return o, nil
	}
	if err := o.Trivy.Validate(); err != nil {
		return o, fmt.Errorf("--scan-images: %w", err)
	}
	// The binary and the cache directory, checked before anything starts.
	if _, err := trivy.New(o.Trivy); err != nil {
		return o, fmt.Errorf("--scan-images: %w", err)
	}
	return o, nil
}

func runServe(cmd *cobra.Command, f *serveFlags, stdio IO) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	logger := slog.New(slog.NewJSONHandler(stdio.Err, &slog.HandlerOptions{Level: level}))
	memoryLimit, err := tuneGC(f.gcPercent, f.memoryLimit)
	if err != nil {
		return err
	}

	cfg, mods, data, err := f.serverPolicies()
	if err != nil {
		return err
	}
	rest, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	rest.QPS, rest.Burst = 50, 100

	dlogOpts := webhook.DecisionLogOptions{Cluster: f.clusterName}
	if f.decisionLogKeyFile != "" {
		if dlogOpts.Key, err = readKeyFile(f.decisionLogKeyFile); err != nil {
			return fmt.Errorf("--decision-log-key-file: %w", err)
		}
	}
	var dlog *webhook.DecisionLog
	switch f.decisionLog {
	case "":
	case "-":
		dlogOpts.Destination = "stdout"
		dlog = webhook.NewChainedDecisionLog(stdio.Out, dlogOpts)
	default:
		dlogOpts.Destination = "file"
		l, file, err := webhook.OpenDecisionLog(f.decisionLog, dlogOpts)
		if err != nil {
			return fmt.Errorf("--decision-log: %w", err)
		}
		defer file.Close()
		dlog = l
	}
	// The end record closes the chain when the server stops cleanly.
	defer func() {
		if err := dlog.Close(); err != nil {
			logger.Error("closing the decision log failed", "error", err)
		}
	}()
	var clientAuth *webhook.ClientAuthOptions
	switch {
	case f.clientCAFile != "":
		clientAuth = &webhook.ClientAuthOptions{CAFile: f.clientCAFile, Names: f.clientNames}
	case len(f.clientNames) > 0:
		return fmt.Errorf("--client-name needs --client-ca-file: the names are checked on certificates from that CA")
	}
	if f.rateLimit < 0 || f.rateBurst < 0 {
		return fmt.Errorf("--rate-limit %g, --rate-burst %d: want 0 or more", f.rateLimit, f.rateBurst)
	}
	var inFlightBytes int64
	if q, err := resource.ParseQuantity(f.maxInFlightBytes); err != nil {
		return fmt.Errorf("--max-in-flight-bytes %q: want a quantity such as 32Mi: %w", f.maxInFlightBytes, err)
	} else if inFlightBytes = q.Value(); inFlightBytes == 0 {
		inFlightBytes = -1
	} else if inFlightBytes < webhook.MaxBodyBytes {
		return fmt.Errorf("--max-in-flight-bytes %s: below the largest request (7Mi), which could never be answered", f.maxInFlightBytes)
	}
	verdictCache, err := resource.ParseQuantity(f.verdictCache)
	if err != nil || verdictCache.Sign() < 0 {
		return fmt.Errorf("--verdict-cache %q: want a size such as 32Mi, or 0 to turn the cache off", f.verdictCache)
	}
	fo, err := f.finOps()
	if err != nil {
		return err
	}
	scans, err := f.imageScan()
	if err != nil {
		return err
	}
	if errs := validation.IsDNS1123Subdomain(f.auditReportName); len(errs) > 0 {
		return fmt.Errorf("--audit-report-name %q: not an object name: %s", f.auditReportName, strings.Join(errs, "; "))
	}
	if f.nsDefaultsResync <= 0 {
		return fmt.Errorf("--namespace-defaults-resync %s: want a positive duration", f.nsDefaultsResync)
	}
	var source *ocisource.Options
	switch {
	case f.source.ref != "":
		trust, err := f.source.trust()
		if err != nil {
			return err
		}
		if f.source.interval <= 0 {
			return fmt.Errorf("--policy-source-interval %s: want a positive duration", f.source.interval)
		}
		source = &ocisource.Options{Ref: f.source.ref, Trust: trust, Registry: ocisource.Registry{Insecure: f.source.insecure},
			Interval: f.source.interval, MaxBackoff: 10 * f.source.interval}
	case len(f.source.keys) > 0:
		return fmt.Errorf("--policy-source-key needs --policy-source")
	}
	var svc *admissionregistrationv1.ServiceReference
	if f.serviceName != "" {
		svc = &admissionregistrationv1.ServiceReference{Namespace: f.namespace, Name: f.serviceName, Port: &f.servicePort}
	}
	return serve.Run(cmd.Context(), serve.Options{
		REST: rest, Host: f.host, Port: f.port,
		CertDir: f.certDir, CertMode: f.certMode, CertSecret: f.certSecret,
		CAValidity: f.caValidity, CertValidity: f.certValidity, CAPublishGrace: f.caPublishGrace,
		Namespace: f.namespace, Name: f.name,
		ManageWebhooks: f.manageWebhooks, URL: f.webhookURL, Service: svc,
		MutateTimeout: f.mutateTimeout, ValidateTimeout: f.validateTimeout,
		Modules: mods, Data: data, Config: cfg, ConfigName: f.configName, PolicyTimeout: f.timeout,
		LeaderElection: f.leaderElect, LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod,
		ShutdownDelay: f.shutdownDelay, PprofAddress: f.pprofAddress,
		MemoryLimit: memoryLimit, CgroupRoot: "/sys/fs/cgroup",
		FinOps:            fo,
		ImageScan:         scans,
		Audit:             serve.AuditOptions{Disabled: !f.audit, Interval: f.auditInterval, MaxResults: f.auditMaxResults, ReportName: f.auditReportName},
		NamespaceDefaults: serve.NamespaceDefaultsOptions{Disabled: !f.nsDefaults, Resync: f.nsDefaultsResync},
		Version:           Version(),
		Gatekeeper:        serve.GatekeeperOptions{NoConstraintCRDs: !f.gatekeeperCRDs},
		Kyverno:           serve.KyvernoOptions{Beside: f.kyvernoBeside},
		Images:            imagesig.Options{Timeout: f.imageTimeout, CacheTTL: f.imageCacheTTL, CacheSize: f.imageCacheSize, Insecure: f.insecureRegistries},
		PolicySource:      source,
		DecisionLog:       dlog, Logger: logger,
		ClientAuth: clientAuth, MetricsAuth: f.metricsAuth,
		MaxInFlight: f.maxInFlight, MaxInFlightBytes: inFlightBytes, VerdictCache: verdictCache.Value(),
		RateLimit: f.rateLimit, RateBurst: f.rateBurst,
		Ready: func() { logger.Info("ready: admission is served") },
	})
}

// finOps reads the FinOps flags: the price catalogue and alert routes
// files are checked here, so a mistake stops the server with the file and
// field rather than surfacing at the first alert.
func (f *serveFlags) finOps() (serve.FinOpsOptions, error) {
	fo := serve.FinOpsOptions{Disabled: !f.finops, PrometheusURL: f.prometheusURL, ScanInterval: f.scanInterval, Cluster: f.clusterName,
		FleetPrometheusURL: f.fleetPrometheus, CentralName: f.fleetCentralName, MirrorInterval: f.fleetMirrorInterval, MaxVerdictAge: f.fleetVerdictMaxAge}
	if f.fleetCentral != "" {
		c, err := clientcmd.BuildConfigFromFlags("", f.fleetCentral)
		if err != nil {
			return fo, fmt.Errorf("--fleet-central-kubeconfig %s: %w", f.fleetCentral, err)
		}
		fo.Central = c
	}
	if f.prices != "" {
		data, err := readLimitedFile(f.prices, 1<<20)
		if err != nil {
			return fo, fmt.Errorf("--prices: %w", err)
		}
		if fo.Prices, err = finops.ParsePrices(data); err != nil {
			return fo, fmt.Errorf("--prices %s: %w", f.prices, err)
		}
	}
	if f.alertRoutes != "" {
		data, err := readLimitedFile(f.alertRoutes, 1<<20)
		if err != nil {
			return fo, fmt.Errorf("--alert-routes: %w", err)
		}
		var routes alerts.Routes
		if err := yaml.UnmarshalStrict(data, &routes); err != nil {
			return fo, fmt.Errorf("--alert-routes %s: %w", f.alertRoutes, err)
		}
		if err := routes.Validate(); err != nil {
			return fo, fmt.Errorf("--alert-routes %s: %w", f.alertRoutes, err)
		}
		fo.Routes = &routes
	}
	return fo, nil
}

func envOr(key, def string) string {
	if v := strings.TrimSpace(os.Getenv(key)); v != "" {
		return v
	}
	return def
}

// tuneGC sets the garbage collector for an admission server: policy
// evaluation allocates a lot of short-lived memory, and the default GOGC of
// 100 spends a third of the CPU collecting it. A higher GOGC under a soft
// memory limit keeps the heap small while it is idle and the CPU on
// requests under load. It returns the soft limit in bytes (0 for none),
// which serve caps at the container's limit. GOGC and GOMEMLIMIT in the
// environment win.
func tuneGC(percent int, limit string) (int64, error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if limit == "0" {
		return 0, nil
	}
	q, err := resource.ParseQuantity(limit)
	if err != nil {
		return 0, fmt.Errorf("--memory-limit %q: want a quantity such as 64Mi: %w", limit, err)
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("--memory-limit %q: want a quantity of at least 0", limit)
	}
	return q.Value(), nil
}

// readKeyFile reads a secret key: at least 16 bytes, surrounding
// whitespace (a trailing newline) trimmed.
func readKeyFile(path string) ([]byte, error) {
	data, err := readLimitedFile(path, 64<<10)
	if err != nil {
		return nil, err
	}
	key := []byte(strings.TrimSpace(string(data)))
	if len(key) < 16 {
		return nil, fmt.Errorf("%s: the key is %d bytes, want at least 16", path, len(key))
	}
	return key, nil
}

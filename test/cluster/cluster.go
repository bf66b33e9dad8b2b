// Package cluster runs the local Kubernetes control plane that Tollgate's
// end-to-end tests, `make demo` and `make dev` use: etcd and kube-apiserver
// through controller-runtime's envtest, optionally kube-controller-manager
// so that Deployments get ReplicaSets and Pods and CronJobs get Jobs, and
// Tollgate's CRDs installed and established.
//
// Every process listens on 127.0.0.1 only, on ports picked per cluster, and
// keeps its state in a temporary directory of its own, so several test
// packages may each start a cluster at the same time. There is no scheduler
// and no kubelet: Pods are created but stay Pending.
//
//	c, err := cluster.Start(ctx, cluster.Options{
//		ControllerManager: true,
//		CRDDirs:           []string{"charts/tollgate/crds"},
//	})
//	if err != nil {
//		return err
//	}
//	defer c.Stop()
//
// The binaries come from bin/k8s (see [Options.BinDir]); `make tools` builds
// them from the versions pinned in test/tools/go.mod.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
)

// BinDirEnv names the environment variable that overrides the default
// [Options.BinDir].
const BinDirEnv = "TOLLGATE_K8S_BIN"

// rootModule is the module whose go.mod marks the repository root, below
// which the binaries live in bin/k8s.
const rootModule = "github.com/tollgate-dev/tollgate"

// Names of the binaries expected in Options.BinDir.
const (
	apiServerBinary         = "kube-apiserver"
	etcdBinary              = "etcd"
	kubectlBinary           = "kubectl"
	controllerManagerBinary = "kube-controller-manager"
)

// Names written into the admin kubeconfig.
const (
	// ContextName names the kubeconfig's cluster and context.
	ContextName = "tollgate"
	// AdminUser is the user name of the admin client certificate; it is a
	// member of system:masters.
	AdminUser = "tollgate-admin"
)

const (
	// maxStartTimeout bounds the start of etcd and kube-apiserver, and the
	// wait for kube-controller-manager to act, when ctx has no earlier
	// deadline. Two cores shared by several test packages can make
	// kube-apiserver take tens of seconds.
	maxStartTimeout = 60 * time.Second
	// stopTimeout bounds the graceful stop of etcd and kube-apiserver.
	stopTimeout = 15 * time.Second
	// killGrace is how long kube-controller-manager has to exit after
	// SIGTERM before its process group gets SIGKILL.
	killGrace = 5 * time.Second
)

// Options configures Start. The zero value starts etcd and kube-apiserver
// from the repository's bin/k8s, installs no CRDs and discards process
// output.
type Options struct {
	// BinDir holds kube-apiserver, etcd and kubectl, and
	// kube-controller-manager when ControllerManager is set. Empty means
	// $TOLLGATE_K8S_BIN, or else bin/k8s under the repository root: the
	// nearest directory, from the working directory up, whose go.mod
	// declares module github.com/tollgate-dev/tollgate.
	BinDir string
	// ControllerManager starts kube-controller-manager with the workload,
	// garbage-collection and namespace controllers, so that Deployments
	// create ReplicaSets and Pods and CronJobs create Jobs.
	ControllerManager bool
	// CRDDirs lists directories of CustomResourceDefinition YAML files to
	// install; Start returns once every CRD is established.
	CRDDirs []string
	// KubeconfigPath is where the admin kubeconfig is written, with mode
	// 0600; missing parent directories are created. Empty means a file in
	// the cluster's temporary directory, removed by Stop. A file given here
	// is left in place by Stop.
	KubeconfigPath string
	// WebhookClientCert makes kube-apiserver present a client certificate
	// (common name WebhookClientName, from a CA of the cluster's own) to
	// every admission webhook, through its AdmissionConfiguration, so that
	// `tollgate serve --client-ca-file` can tell it from other callers.
	// [Cluster.WebhookClientCAFile] is the CA to give it.
	WebhookClientCert bool
	// Log receives the output of etcd, kube-apiserver and
	// kube-controller-manager, one line at a time, each prefixed with the
	// process name. Nil discards it; the last lines of each process are
	// kept for error messages either way. Write errors are ignored.
	Log io.Writer
}

// Validate reports options Start cannot work with: missing binaries, with
// how to build them, and missing CRD directories.
func (o Options) Validate() error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	return o.validate()
}

// validate is Validate on options that already have their defaults.
func (o Options) validate() error {
	bins := []string{apiServerBinary, etcdBinary, kubectlBinary}
	if o.ControllerManager {
		bins = append(bins, controllerManagerBinary)
	}
	var missing []string
	for _, b := range bins {
		if !isExecutable(filepath.Join(o.BinDir, b)) {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cluster options: BinDir %s lacks %s: build the Kubernetes binaries with `make tools`, or set %s to a directory that holds them",
			o.BinDir, strings.Join(missing, ", "), BinDirEnv)
	}
	for i, d := range o.CRDDirs {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("cluster options: CRDDirs[%d]: %w", i, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("cluster options: CRDDirs[%d]: %s is not a directory", i, d)
		}
	}
	return nil
}

// withDefaults fills in BinDir and Log and makes paths absolute.
func (o Options) withDefaults() (Options, error) {
	if o.BinDir == "" {
		o.BinDir = os.Getenv(BinDirEnv)
	}
	if o.BinDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return o, fmt.Errorf("cluster options: finding the repository root: %w", err)
		}
		root, err := repoRoot(wd)
		if err != nil {
			return o, fmt.Errorf("cluster options: BinDir is empty and %s is unset: %w", BinDirEnv, err)
		}
		o.BinDir = filepath.Join(root, "bin", "k8s")
	}
	// kubectl and kube-controller-manager get these paths; absolute ones
	// keep working whatever the caller's working directory becomes.
	if abs, err := filepath.Abs(o.BinDir); err == nil {
		o.BinDir = abs
	}
	if o.KubeconfigPath != "" {
		if abs, err := filepath.Abs(o.KubeconfigPath); err == nil {
			o.KubeconfigPath = abs
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.CRDDirs = append([]string(nil), o.CRDDirs...)
	return o, nil
}

// RepoRoot is the repository root: the nearest directory, from the working
// directory up, whose go.mod declares Tollgate's module. Tests, the demo and
// the benchmark find manifests and binaries from it.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	return repoRoot(wd)
}

// repoRoot returns the nearest directory, from dir up, whose go.mod
// declares rootModule. Other modules on the way, such as test/tools, are
// skipped.
func repoRoot(dir string) (string, error) {
	for d := dir; ; {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(data) == rootModule {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod of module %s in %s or above", rootModule, dir)
		}
		d = parent
	}
}

// modulePath returns the path on a go.mod file's module line, or "".
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "module")
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		rest, _, _ = strings.Cut(rest, "//")
		return strings.Trim(strings.TrimSpace(rest), `"`+"`")
	}
	return ""
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// Cluster is a running control plane. Its methods are safe for concurrent
// use.
type Cluster struct {
	opts       Options
	dir        string // temporary directory, removed by Stop
	env        *envtest.Environment
	cfg        *rest.Config
	kubeconfig string
	cmdEnv     []string // environment of kubectl and kube-controller-manager
	kcm        *proc.Process

	// With WebhookClientCert: the CA of kube-apiserver's webhook client
	// certificate, and its file.
	clientCA     *ClientCA
	clientCAFile string

	stopOnce sync.Once
	stopErr  error

	restartMu sync.Mutex // serialises restarts (restart.go) and Stop
	stopped   bool       // set by Stop, under restartMu
}

// Start runs etcd, kube-apiserver and, if asked, kube-controller-manager,
// installs the CRDs and writes the admin kubeconfig. It returns once the API
// server serves, every CRD is established and the controller manager has
// acted on a probe Deployment. If anything fails, everything started so far
// is stopped and removed.
//
// ctx bounds the start only: the cluster runs until Stop. Its deadline, if
// earlier than a minute away, also bounds each process's start, which
// envtest cannot otherwise interrupt.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}

	dir, err := os.MkdirTemp("", "tollgate-cluster-")
	if err != nil {
		return nil, fmt.Errorf("creating the cluster directory: %w", err)
	}
	c := &Cluster{opts: opts, dir: dir, kubeconfig: opts.KubeconfigPath}
	defer func() {
		if err != nil {
			if stopErr := c.Stop(); stopErr != nil {
				err = errors.Join(err, fmt.Errorf("cleaning up: %w", stopErr))
			}
		}
	}()
	if c.kubeconfig == "" {
		c.kubeconfig = filepath.Join(dir, "kubeconfig")
	}
	c.cmdEnv = commandEnv(os.Environ(), filepath.Join(dir, "kubectl-cache"))

	log := &syncWriter{w: opts.Log}
	etcdOut, apiOut := newOutput(etcdBinary, log), newOutput(apiServerBinary, log)
	for _, sub := range []string{"etcd", "apiserver"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("creating the cluster directory: %w", err)
		}
	}
	timeout := startTimeout(ctx)
	noExistingCluster := false
	etcd := &envtest.Etcd{
		Path:    filepath.Join(opts.BinDir, etcdBinary),
		DataDir: filepath.Join(dir, "etcd"),
		Out:     etcdOut,
		Err:     etcdOut,
	}
	// A throwaway test store: skipping fsync makes writes (tests that
	// create thousands of objects) an order of magnitude faster.
	etcd.Configure().Set("unsafe-no-fsync", "true")
	apiServer := &envtest.APIServer{
		Path:    filepath.Join(opts.BinDir, apiServerBinary),
		CertDir: filepath.Join(dir, "apiserver"),
		Out:     apiOut,
		Err:     apiOut,
	}
	if opts.WebhookClientCert {
		var admissionConfig string
		if c.clientCA, c.clientCAFile, admissionConfig, err = writeWebhookClient(dir); err != nil {
			return nil, err
		}
		apiServer.Configure().Set("admission-control-config-file", admissionConfig)
	}
	c.env = &envtest.Environment{
		BinaryAssetsDirectory: opts.BinDir,
		CRDDirectoryPaths:     opts.CRDDirs,
		ErrorIfCRDPathMissing: true,
		// envtest waits 10 seconds for the CRDs to be served by default: too
		// short on shared cores for large ones (Kyverno's ClusterPolicy CRD
		// is 1.4 MB); the start's own timeout bounds the wait instead.
		CRDInstallOptions: envtest.CRDInstallOptions{MaxTime: timeout},
		// Never attach to whatever cluster USE_EXISTING_CLUSTER points at.
		UseExistingCluster:       &noExistingCluster,
		ControlPlaneStartTimeout: timeout,
		ControlPlaneStopTimeout:  stopTimeout,
		ControlPlane: envtest.ControlPlane{
			// Paths are set explicitly so that KUBEBUILDER_ASSETS and
			// TEST_ASSET_* in the environment cannot swap the binaries.
			Etcd:        etcd,
			APIServer:   apiServer,
			KubectlPath: filepath.Join(opts.BinDir, kubectlBinary),
		},
	}
	if _, err := c.env.Start(); err != nil {
		return nil, apiOut.annotate(etcdOut.annotate(fmt.Errorf("starting etcd and kube-apiserver: %w", err)))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}

	admin, err := c.env.ControlPlane.AddUser(envtest.User{Name: AdminUser, Groups: []string{"system:masters"}},
		&rest.Config{QPS: 100, Burst: 200})
	if err != nil {
		return nil, fmt.Errorf("creating the admin user: %w", err)
	}
	c.cfg = admin.Config()
	if err := writeKubeconfig(c.kubeconfig, c.cfg); err != nil {
		return nil, err
	}

	if opts.ControllerManager {
		kcmOut := newOutput(controllerManagerBinary, log)
		c.kcm, err = proc.Start(filepath.Join(opts.BinDir, controllerManagerBinary),
			controllerManagerArgs(c.kubeconfig), c.cmdEnv, kcmOut)
		if err != nil {
			return nil, fmt.Errorf("starting kube-controller-manager: %w", err)
		}
		probeCtx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := waitForControllers(probeCtx, c.cfg, c.kcm); err != nil {
			return nil, kcmOut.annotate(fmt.Errorf("waiting for kube-controller-manager: %w", err))
		}
	}
	return c, nil
}

// startTimeout is maxStartTimeout, or less if ctx's deadline is nearer.
func startTimeout(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return maxStartTimeout
	}
	return min(maxStartTimeout, max(time.Until(deadline), time.Second))
}

// commandEnv returns environ without the variables that would point
// kubectl at another cluster or cache, plus KUBECACHEDIR set to cacheDir.
func commandEnv(environ []string, cacheDir string) []string {
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if name == "KUBECONFIG" || name == "KUBECACHEDIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "KUBECACHEDIR="+cacheDir)
}

// writeKubeconfig atomically writes a kubeconfig for cfg to path, with mode
// 0600.
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[ContextName] = &clientcmdapi.Cluster{
		Server:                   strings.TrimSuffix(cfg.Host, "/"),
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos[AdminUser] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData,
		ClientKeyData:         cfg.KeyData,
	}
	kc.Contexts[ContextName] = &clientcmdapi.Context{Cluster: ContextName, AuthInfo: AdminUser, Namespace: "default"}
	kc.CurrentContext = ContextName
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("encoding the kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	// CreateTemp makes the file 0600; renaming it over path replaces an
	// old kubeconfig in one step.
	f, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing the kubeconfig %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}

// Config returns a copy of the admin client configuration: user
// tollgate-admin in group system:masters.
func (c *Cluster) Config() *rest.Config {
	return rest.CopyConfig(c.cfg)
}

// WebhookClientCAFile is the PEM file of the CA that signs the client
// certificate kube-apiserver presents to webhooks; empty without
// Options.WebhookClientCert. Tests may replace its content.
func (c *Cluster) WebhookClientCAFile() string { return c.clientCAFile }

// WebhookClientCA is that CA, to issue other certificates from it; nil
// without Options.WebhookClientCert.
func (c *Cluster) WebhookClientCA() *ClientCA { return c.clientCA }

// KubeconfigPath returns the path of the admin kubeconfig.
func (c *Cluster) KubeconfigPath() string {
	return c.kubeconfig
}

// Server returns the API server's URL, such as https://127.0.0.1:38211.
func (c *Cluster) Server() string {
	return strings.TrimSuffix(c.cfg.Host, "/")
}

// Kubectl runs kubectl from BinDir against the cluster as the admin and
// returns what it wrote. Its environment is this process's without
// KUBECONFIG, and with KUBECACHEDIR in the cluster's temporary directory, so
// neither the host's clusters nor its discovery cache get involved. A
// non-zero exit is an error that also quotes stderr.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return c.KubectlWithStdin(ctx, "", args...)
}

// KubectlWithStdin is Kubectl with stdin as kubectl's standard input, for
// `kubectl apply -f -` and the like.
func (c *Cluster) KubectlWithStdin(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.opts.BinDir, kubectlBinary),
		append([]string{"--kubeconfig=" + c.kubeconfig}, args...)...)
	cmd.Env = c.cmdEnv
	cmd.Stdin = strings.NewReader(stdin)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	stdout, stderr = outBuf.String(), errBuf.String()
	if err != nil {
		msg := strings.TrimSpace(stderr)
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		return stdout, stderr, fmt.Errorf("running kubectl %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return stdout, stderr, nil
}

// Transcript runs kubectl as a user at a terminal would, from dir, with the
// admin kubeconfig in KUBECONFIG (so the command line is the one they
// type) and a discovery cache of its own (so a kind just created is known),
// and returns what the terminal shows: "$ kubectl ARGS", then stdout and
// stderr as they were written. The docs quote such transcripts and their
// tests compare them. A non-zero exit is the error, beside the transcript.
func (c *Cluster) Transcript(ctx context.Context, dir, stdin string, args ...string) (string, error) {
	cache, err := os.MkdirTemp(c.dir, "kubectl-cache-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(cache) }()
	cmd := exec.CommandContext(ctx, filepath.Join(c.opts.BinDir, kubectlBinary), args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(c.cmdEnv), "KUBECONFIG="+c.kubeconfig, "KUBECACHEDIR="+cache)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	return "$ kubectl " + docexample.ShellWords(args) + "\n" + out.String(), err
}

// Stop stops kube-controller-manager (SIGTERM to its process group, SIGKILL
// after a few seconds), then kube-apiserver and etcd, and removes the
// cluster's temporary directory. It waits for every process to exit. Only
// the first call does anything; later calls return its result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.restartMu.Lock()
		c.stopped = true
		c.restartMu.Unlock()
		c.stopErr = c.stop()
	})
	return c.stopErr
}

func (c *Cluster) stop() error {
	var errs []error
	if c.kcm != nil {
		if err := c.kcm.Stop(killGrace); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-controller-manager: %w", err))
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing the cluster directory: %w", err))
	}
	return errors.Join(errs...)
}

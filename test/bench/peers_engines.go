package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// Where the peers' policies live, from the repository root.
const (
	kyvernoPolicies       = "test/bench/peers/kyverno/policies.yaml"
	gatekeeperTemplates   = "test/bench/peers/gatekeeper/templates.yaml"
	gatekeeperConstraints = "test/bench/peers/gatekeeper/constraints.yaml"
)

// startTollgate starts tollgate serve. With pssOnly, every library policy
// but the pss-* ones is disabled, nothing is mutated, budgets are off and
// only a validating webhook is registered (by the benchmark); else it runs
// as the load benchmark runs it, registering its own webhooks.
func startTollgate(ctx context.Context, env *peerEnv, pssOnly bool) (_ *peerRun, err error) {
	ids, err := tollgatePolicies(ctx, env.tollgate)
	if err != nil {
		return nil, err
	}
	name := "tollgate"
	if pssOnly {
		name = "tollgate-pss"
	}
	certDir := filepath.Join(env.workDir, name+"-certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	// -serve-arg flags go to both Tollgate rows, e.g. to try a setting.
	args := slices.Clone(env.opts.serveArgs)
	policies := len(ids)
	if pssOnly {
		cfg, n := pssOnlyConfig(ids)
		policies = n
		path := filepath.Join(env.workDir, "tollgate-pss-config.yaml")
		if err := os.WriteFile(path, cfg, 0o600); err != nil {
			return nil, err
		}
		args = append(args, "--config", path, "--finops=false")
	}
	out := &tailBuffer{max: 16 << 10}
	srv, err := startServer(ctx, serverOptions{
		Binary: env.tollgate, Kubeconfig: env.cluster.KubeconfigPath(), Port: port, CertDir: certDir,
		ManageWebhooks: !pssOnly, Log: out, Args: args,
	})
	if err != nil {
		return nil, fmt.Errorf("%w\nlast output of tollgate serve:\n%s", err, indent(out.String()))
	}
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	run := &peerRun{process: srv.Process, validateURL: base + "/validate", policies: policies}
	run.cleanup = func(ctx context.Context) error {
		errs := []error{srv.stop(), unregisterWebhook(ctx, env.kube)}
		if !pssOnly {
			errs = append(errs, deleteWebhookConfigurations(ctx, env, func(url string) bool { return strings.HasPrefix(url, base) }))
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("%w\nlast output of tollgate serve:\n%s", err, indent(out.String())), run.cleanup(context.WithoutCancel(ctx)))
		}
	}()
	if run.caPEM, err = os.ReadFile(filepath.Join(certDir, "ca.crt")); err != nil {
		return nil, fmt.Errorf("reading tollgate serve's CA: %w", err)
	}
	if pssOnly {
		if err := registerWebhook(ctx, env.kube, run.validateURL, run.caPEM); err != nil {
			return nil, err
		}
	} else if err := waitEnforcing(ctx, env.kube, benchNS); err != nil {
		return nil, err
	}
	return run, nil
}

// tollgatePolicies lists the ids of the policies tollgate loads by default.
func tollgatePolicies(ctx context.Context, binary string) ([]string, error) {
	cmd := exec.CommandContext(ctx, binary, "policies", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s policies --json: %w: %s", binary, err, strings.TrimSpace(stderr.String()))
	}
	var list []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("%s policies --json: %w", binary, err)
	}
	ids := make([]string, 0, len(list))
	for _, p := range list {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// pssOnlyConfig is a Tollgate config that disables every policy of ids but
// the pss-* ones and every mutation; it also returns how many stay on.
func pssOnlyConfig(ids []string) ([]byte, int) {
	var b strings.Builder
	b.WriteString("apiVersion: tollgate.dev/v1alpha1\nkind: Config\npolicies:\n")
	on := 0
	for _, id := range ids {
		if strings.HasPrefix(id, "pss-") {
			on++
			continue
		}
		fmt.Fprintf(&b, "  %s:\n    action: disabled\n", id)
	}
	b.WriteString("mutations:\n  ownership:\n    enabled: false\n  securityContext:\n    enabled: false\n  resources:\n    enabled: false\n")
	return []byte(b.String()), on
}

// Kyverno's namespace and the names it is told to use in it.
const (
	kyvernoNamespace = "kyverno"
	kyvernoCASecret  = "kyverno-svc.kyverno.svc.kyverno-tls-ca"
	kyvernoTLSSecret = "kyverno-svc.kyverno.svc.kyverno-tls-pair"
)

// startKyverno runs Kyverno's admission controller out of cluster: it
// makes its own certificates (Secrets in its namespace) and registers its
// own webhooks with URLs on --serverIP once the ValidatingPolicies are
// ready. Admission reports and events for passing policies are off, as
// the benchmark measures admission alone.
func startKyverno(ctx context.Context, env *peerEnv) (_ *peerRun, err error) {
	if err := createNamespace(ctx, env, kyvernoNamespace); err != nil {
		return nil, err
	}
	for _, cm := range []string{"kyverno", "kyverno-metrics"} {
		_, err := env.kube.CoreV1().ConfigMaps(kyvernoNamespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: cm}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating ConfigMap %s/%s: %w", kyvernoNamespace, cm, err)
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	hostPort := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := []string{
		"--kubeconfig=" + env.cluster.KubeconfigPath(),
		"--serverIP=" + hostPort,
		"--webhookServerHost=127.0.0.1",
		"--webhookServerPort=" + strconv.Itoa(ports[0]),
		"--caSecretName=" + kyvernoCASecret,
		"--tlsSecretName=" + kyvernoTLSSecret,
		"--admissionReports=false",
		"--omitEvents=PolicyApplied,PolicySkipped",
		"--metricsPort=" + strconv.Itoa(ports[1]),
		"--controllerRuntimeMetricsAddress=0",
		"--webhookTimeout=10",
	}
	environ := append(os.Environ(),
		"KYVERNO_NAMESPACE="+kyvernoNamespace, "KYVERNO_POD_NAME=kyverno-bench",
		"KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller", "KYVERNO_DEPLOYMENT=kyverno-admission-controller",
		"KYVERNO_SVC=kyverno-svc", "INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics")
	out := &tailBuffer{max: 32 << 10}
	p, err := proc.Start(env.kyverno, args, environ, out)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", env.kyverno, err)
	}
	policies := filepath.Join(env.root, kyvernoPolicies)
	run := &peerRun{process: p, policies: countDocs(policies, "ValidatingPolicy")}
	run.cleanup = func(ctx context.Context) error {
		return errors.Join(p.Stop(serverStopGrace),
			kubectl(ctx, env, "delete", "--ignore-not-found", "--wait=false", "-f", policies),
			deleteWebhookConfigurations(ctx, env, func(url string) bool { return strings.HasPrefix(url, "https://"+hostPort) }))
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("%w\nlast output of kyverno:\n%s", err, indent(out.String())), run.cleanup(context.WithoutCancel(ctx)))
		}
	}()
	if err := kubectl(ctx, env, "apply", "-f", policies); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, peerStartTimeout)
	defer cancel()
	err = pollUntil(ctx, p, "Kyverno to register a webhook for Pods", func() error {
		url, ca, err := findPodWebhook(ctx, env, "https://"+hostPort)
		run.validateURL, run.caPEM = url, ca
		return err
	})
	if err != nil {
		return nil, err
	}
	// Kyverno serves with the certificate of its TLS Secret, which may
	// not be written yet when its webhooks are.
	client, err := caClient(run.caPEM, 1, nil)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	if err := pollUntil(ctx, p, "Kyverno to be ready", func() error {
		return probe(ctx, client, "https://"+hostPort+"/health/readiness")
	}); err != nil {
		return nil, err
	}
	return run, nil
}

// findPodWebhook returns the URL and CA bundle of the validating webhook
// whose URL starts with prefix and whose rules cover Pod creates,
// preferring ValidatingPolicy paths (/vpol).
func findPodWebhook(ctx context.Context, env *peerEnv, prefix string) (string, []byte, error) {
	list, err := env.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", nil, err
	}
	var url string
	var ca []byte
	for _, cfg := range list.Items {
		for _, w := range cfg.Webhooks {
			u := w.ClientConfig.URL
			if u == nil || !strings.HasPrefix(*u, prefix) || !coversPods(w.Rules) {
				continue
			}
			if url == "" || strings.Contains(*u, "/vpol") && !strings.Contains(url, "/vpol") {
				url, ca = *u, w.ClientConfig.CABundle
			}
		}
	}
	if url == "" {
		return "", nil, fmt.Errorf("no validating webhook at %s for pods among %d configurations", prefix, len(list.Items))
	}
	return url, ca, nil
}

// coversPods reports whether rules match creating a core/v1 Pod.
func coversPods(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		ops := make([]string, len(r.Operations))
		for i, op := range r.Operations {
			ops[i] = string(op)
		}
		if matchAny(r.APIGroups, "") && matchAny(r.Resources, "pods") && matchAny(ops, "CREATE") {
			return true
		}
	}
	return false
}

func matchAny(list []string, want string) bool {
	for _, v := range list {
		if v == want || v == "*" {
			return true
		}
	}
	return false
}

// deleteWebhookConfigurations deletes every webhook configuration with a
// webhook whose URL matches.
func deleteWebhookConfigurations(ctx context.Context, env *peerEnv, match func(url string) bool) error {
	api := env.kube.AdmissionregistrationV1()
	var errs []error
	vs, err := api.ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, cfg := range vs.Items {
		for _, w := range cfg.Webhooks {
			if w.ClientConfig.URL != nil && match(*w.ClientConfig.URL) {
				if err := api.ValidatingWebhookConfigurations().Delete(ctx, cfg.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				break
			}
		}
	}
	ms, err := api.MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, cfg := range ms.Items {
		for _, w := range cfg.Webhooks {
			if w.ClientConfig.URL != nil && match(*w.ClientConfig.URL) {
				if err := api.MutatingWebhookConfigurations().Delete(ctx, cfg.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}

// Gatekeeper's own namespace and the name of its Pod.
const (
	gatekeeperNamespace = "gatekeeper-system"
	gatekeeperPod       = "gatekeeper-bench"
)

// startGatekeeper runs Gatekeeper's manager as the webhook operation only
// and the generation of constraint CRDs (no audit), with certificate rotation off and a serving certificate made
// here, applies the templates and constraints and registers its
// validating webhook with a URL.
func startGatekeeper(ctx context.Context, env *peerEnv) (_ *peerRun, err error) {
	if err := createNamespace(ctx, env, gatekeeperNamespace); err != nil {
		return nil, err
	}
	// Gatekeeper's status objects are owned by its own Pod, which it
	// looks up by POD_NAME: a Pod object of that name (never scheduled:
	// the local control plane has no nodes) stands in for it.
	_, err = env.kube.CoreV1().Pods(gatekeeperNamespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: gatekeeperPod, Namespace: gatekeeperNamespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "openpolicyagent/gatekeeper:v3.23.1"}}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating Gatekeeper's Pod object: %w", err)
	}
	certDir := filepath.Join(env.workDir, "gatekeeper-certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		return nil, err
	}
	caPEM, err := writeServingCert(certDir)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--operation=webhook",
		"--operation=generate", // the constraint kinds' CRDs, which the audit pod creates in a real install
		"--port=" + strconv.Itoa(ports[0]),
		"--host=127.0.0.1",
		"--cert-dir=" + certDir,
		"--disable-cert-rotation",
		"--health-addr=127.0.0.1:" + strconv.Itoa(ports[1]),
		"--prometheus-port=" + strconv.Itoa(ports[2]),
		"--metrics-addr=0",
		"--shutdown-delay=0",
		"--log-level=ERROR",
	}
	environ := append(os.Environ(), "KUBECONFIG="+env.cluster.KubeconfigPath(),
		"POD_NAMESPACE="+gatekeeperNamespace, "POD_NAME="+gatekeeperPod)
	out := &tailBuffer{max: 32 << 10}
	p, err := proc.Start(env.gatekeeper, args, environ, out)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", env.gatekeeper, err)
	}
	templates := filepath.Join(env.root, gatekeeperTemplates)
	constraints := filepath.Join(env.root, gatekeeperConstraints)
	url := "https://127.0.0.1:" + strconv.Itoa(ports[0]) + "/v1/admit"
	run := &peerRun{process: p, validateURL: url, caPEM: caPEM, policies: countDocs(templates, "ConstraintTemplate")}
	run.cleanup = func(ctx context.Context) error {
		return errors.Join(p.Stop(serverStopGrace), unregisterWebhook(ctx, env.kube),
			kubectl(ctx, env, "delete", "--ignore-not-found", "--wait=false", "-f", constraints),
			kubectl(ctx, env, "delete", "--ignore-not-found", "--wait=false", "-f", templates))
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("%w\nlast output of gatekeeper:\n%s", err, indent(out.String())), run.cleanup(context.WithoutCancel(ctx)))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, peerStartTimeout)
	defer cancel()
	if err := kubectl(ctx, env, "apply", "-f", templates); err != nil {
		return nil, err
	}
	// Gatekeeper creates each constraint kind's CRD from its template.
	if err := pollUntil(ctx, p, "Gatekeeper to create the constraint kinds", func() error {
		return kubectl(ctx, env, "apply", "-f", constraints)
	}); err != nil {
		crds, stderr, _ := env.cluster.Kubectl(context.WithoutCancel(ctx), "get", "crd", "-l", "gatekeeper.sh/constraint=yes",
			"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Established")].status}{"\n"}{end}`)
		return nil, fmt.Errorf("%w\nconstraint CRDs (name, established):\n%s%s", err, indent(crds), stderr)
	}
	health := "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/readyz"
	if err := pollUntil(ctx, p, "Gatekeeper to be ready ("+health+")", func() error {
		return probe(ctx, http.DefaultClient, health)
	}); err != nil {
		return nil, err
	}
	if err := registerWebhook(ctx, env.kube, url, caPEM); err != nil {
		return nil, err
	}
	return run, nil
}

// createNamespace creates ns unless it exists.
func createNamespace(ctx context.Context, env *peerEnv, ns string) error {
	_, err := env.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return nil
}

// kubectl runs kubectl against the cluster; its error quotes stderr.
func kubectl(ctx context.Context, env *peerEnv, args ...string) error {
	_, stderr, err := env.cluster.Kubectl(ctx, args...)
	if err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr))
	}
	return nil
}

// countDocs counts the documents of kind in a YAML file; 0 when it cannot
// be read (the apply that follows says why).
func countDocs(path, kind string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	docs, err := splitDocs(data)
	if err != nil {
		return 0
	}
	n := 0
	for _, d := range docs {
		if d.Kind == kind {
			n++
		}
	}
	return n
}

// yamlDoc is the part of a manifest the benchmark reads.
type yamlDoc struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec map[string]any `json:"spec"`
}

// splitDocs decodes every non-empty document of a multi-document YAML
// file, saying which one fails.
func splitDocs(data []byte) ([]yamlDoc, error) {
	var out []yamlDoc
	for i, part := range bytes.Split(data, []byte("\n---")) {
		var d yamlDoc
		if err := yaml.Unmarshal(part, &d); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if d.Kind == "" && d.APIVersion == "" {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		p, err := proc.FreePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// writeServingCert writes tls.crt and tls.key for 127.0.0.1 into dir,
// signed by a new CA, and returns the CA's PEM.
func writeServingCert(dir string) ([]byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-peers-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, data := range map[string][]byte{
		"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"ca.crt":  caPEM,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

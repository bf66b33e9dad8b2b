package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/compliance"
)

// maxClusterName bounds a --cluster name.
const maxClusterName = 63

// clusterSource is one --cluster NAME=KUBECONFIG, or one cluster Secret
// of --clusters-from-secrets (its kubeconfig written to a private
// temporary file, removed when the report is written).
type clusterSource struct {
	name, kubeconfig string
	remove           bool
	// origin says where the kubeconfig came from, in errors.
	origin string
}

// Cluster Secrets: the label naming the cluster, and the key holding its
// kubeconfig.
const (
	clusterSecretLabel = "tollgate.dev/cluster"
	clusterSecretKey   = "kubeconfig"
)

// maxClusterSecrets bounds the clusters one report reads from Secrets.
const maxClusterSecrets = 500

// clustersFromSecrets reads the clusters' kubeconfigs from the Secrets of
// the central cluster (--kubeconfig) labelled clusterSecretLabel in the
// namespace --clusters-from-secrets names. Each mistake names its Secret;
// nothing is read from a Secret that is not labelled.
func (f *reportFlags) clustersFromSecrets(ctx context.Context) (out []clusterSource, err error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--clusters-from-secrets: the central cluster's kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	list, err := kube.CoreV1().Secrets(f.clusterSecrets).List(ctx, metav1.ListOptions{LabelSelector: clusterSecretLabel, Limit: maxClusterSecrets + 1})
	if err != nil {
		return nil, fmt.Errorf("--clusters-from-secrets: listing the Secrets labelled %s in namespace %s of %s: %w", clusterSecretLabel, f.clusterSecrets, rest.Host, err)
	}
	switch {
	case len(list.Items) == 0:
		return nil, fmt.Errorf("--clusters-from-secrets: no Secret labelled %s in namespace %s of %s", clusterSecretLabel, f.clusterSecrets, rest.Host)
	case len(list.Items) > maxClusterSecrets || list.Continue != "":
		return nil, fmt.Errorf("--clusters-from-secrets: more than %d cluster Secrets in namespace %s", maxClusterSecrets, f.clusterSecrets)
	}
	defer func() {
		if err != nil {
			for _, s := range out {
				_ = os.Remove(s.kubeconfig)
			}
			out = nil
		}
	}()
	seen := map[string]string{}
	for _, sec := range list.Items {
		where := fmt.Sprintf("Secret %s/%s", sec.Namespace, sec.Name)
		name := sec.Labels[clusterSecretLabel]
		if name == "" {
			return out, fmt.Errorf("%s: the label %s names no cluster", where, clusterSecretLabel)
		}
		if other, ok := seen[name]; ok {
			return out, fmt.Errorf("%s: cluster %s is named by %s too", where, name, other)
		}
		seen[name] = where
		data, ok := sec.Data[clusterSecretKey]
		if !ok || len(data) == 0 {
			return out, fmt.Errorf("%s: no key %s holding the cluster's kubeconfig", where, clusterSecretKey)
		}
		cfg, err := clientcmd.Load(data)
		if err == nil {
			_, err = clientcmd.NewNonInteractiveClientConfig(*cfg, cfg.CurrentContext, nil, nil).ClientConfig()
		}
		if err != nil {
			return out, fmt.Errorf("%s: key %s is not a kubeconfig that loads: %w", where, clusterSecretKey, err)
		}
		tmp, err := os.CreateTemp("", "tollgate-cluster-*.kubeconfig")
		if err != nil {
			return out, err
		}
		_, werr := tmp.Write(data)
		if cerr := tmp.Close(); werr == nil {
			werr = cerr
		}
		out = append(out, clusterSource{name: name, kubeconfig: tmp.Name(), remove: true, origin: where})
		if werr != nil {
			return out, werr
		}
	}
	slices.SortFunc(out, func(a, b clusterSource) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// parseClusters reads the --cluster values: each NAME=KUBECONFIG, names
// distinct, each kubeconfig a file that loads. Every mistake names the
// value it is in.
func parseClusters(values []string) ([]clusterSource, error) {
	var out []clusterSource
	seen := map[string]bool{}
	for _, v := range values {
		name, path, ok := strings.Cut(v, "=")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			return nil, fmt.Errorf("--cluster %q: want NAME=KUBECONFIG (a name for the report and the cluster's kubeconfig file)", v)
		case name == "":
			return nil, fmt.Errorf("--cluster %q: the name before = is empty", v)
		case len(name) > maxClusterName:
			return nil, fmt.Errorf("--cluster %q: the name is longer than %d characters", v, maxClusterName)
		case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == ',' || r == ';' }):
			return nil, fmt.Errorf("--cluster %q: the name holds a control character, a comma or a semicolon", v)
		case path == "":
			return nil, fmt.Errorf("--cluster %q: the kubeconfig after = is empty", v)
		case seen[name]:
			return nil, fmt.Errorf("--cluster %q: the name %s is given twice", v, name)
		}
		seen[name] = true
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return nil, fmt.Errorf("--cluster %q: kubeconfig: %w", v, err)
		case fi.IsDir():
			return nil, fmt.Errorf("--cluster %q: kubeconfig %s is a directory", v, path)
		}
		cfg, err := clientcmd.LoadFromFile(path)
		if err == nil {
			_, err = clientcmd.NewNonInteractiveClientConfig(*cfg, cfg.CurrentContext, nil, nil).ClientConfig()
		}
		if err != nil {
			return nil, fmt.Errorf("--cluster %q: kubeconfig: %w", v, err)
		}
		out = append(out, clusterSource{name: name, kubeconfig: path})
	}
	return out, nil
}

// fromClusters reads each --cluster as a report on it alone would be
// read. A cluster that cannot be read stops the report, since an
// auditor's report is never made from part of the clusters, unless
// --allow-missing: then it is marked unreachable and the report names it.
func (f *reportFlags) fromClusters(ctx context.Context, sources []clusterSource, now time.Time) ([]compliance.Input, error) {
	parts := make([]compliance.Input, 0, len(sources))
	var missing []string
	for _, s := range sources {
		in, server, err := f.readCluster(ctx, s.kubeconfig, s.name, now)
		if err != nil {
			if !f.allowMissing {
				return nil, fmt.Errorf("--cluster %s=%s: %w (no report written: give --allow-missing to report on the other clusters and name this one as not read)", s.name, cmp.Or(s.origin, s.kubeconfig), err)
			}
			missing = append(missing, s.name)
			parts = append(parts, compliance.Input{Cluster: &compliance.Cluster{Name: s.name, Server: server, Unreachable: err.Error()}})
			continue
		}
		parts = append(parts, in)
	}
	if len(missing) == len(sources) {
		return nil, errors.New("--cluster: no cluster could be read (" + strings.Join(missing, ", ") + "): no report written")
	}
	return parts, nil
}

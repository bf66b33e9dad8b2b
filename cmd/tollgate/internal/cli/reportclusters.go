package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/compliance"
)

// maxClusterName bounds a --cluster name.
const maxClusterName = 63

// clusterSource is one --cluster NAME=KUBECONFIG.
type clusterSource struct {
	name, kubeconfig string
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
				return nil, fmt.Errorf("--cluster %s=%s: %w (no report written: give --allow-missing to report on the other clusters and name this one as not read)", s.name, s.kubeconfig, err)
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

package webhook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// maxPullSecretBytes bounds the docker config read from one Secret.
const maxPullSecretBytes = 1 << 20

// PullSecrets reads a pod's registry credentials the way the kubelet
// would: the pod's imagePullSecrets, then its service account's. Secrets
// are read live (not cached cluster-wide) when an image needs them.
type PullSecrets struct {
	Reader client.Reader
}

// Keychain returns the credentials of a pod spec in a namespace. Secrets
// that do not exist are skipped, as the kubelet skips them; other read
// errors are returned with the keychain of what could be read.
func (p *PullSecrets) Keychain(ctx context.Context, namespace string, spec map[string]any) (authn.Keychain, error) {
	if namespace == "" || spec == nil {
		return nil, nil
	}
	var names []string
	add := func(refs any) {
		list, _ := refs.([]any)
		for _, r := range list {
			if m, _ := r.(map[string]any); m != nil {
				if n, _ := m["name"].(string); n != "" {
					names = append(names, n)
				}
			}
		}
	}
	add(spec["imagePullSecrets"])
	saName, _ := spec["serviceAccountName"].(string)
	if saName == "" {
		saName = "default"
	}
	var errs []error
	var sa corev1.ServiceAccount
	switch err := p.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: saName}, &sa); {
	case err == nil:
		for _, r := range sa.ImagePullSecrets {
			names = append(names, r.Name)
		}
	case !apierrors.IsNotFound(err):
		errs = append(errs, fmt.Errorf("service account %s/%s: %w", namespace, saName, err))
	}
	kc := dockerKeychain{}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		var s corev1.Secret
		if err := p.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: n}, &s); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("pull secret %s/%s: %w", namespace, n, err))
			}
			continue
		}
		entries, err := parseDockerConfig(&s)
		if err != nil {
			errs = append(errs, fmt.Errorf("pull secret %s/%s: %w", namespace, n, err))
			continue
		}
		kc = append(kc, entries...)
	}
	if len(kc) == 0 {
		return nil, errors.Join(errs...)
	}
	// The most specific path wins across all the secrets, as in the
	// kubelet's keyring; otherwise the pod's secrets come first.
	sort.SliceStable(kc, func(i, j int) bool { return len(kc[i].path) > len(kc[j].path) })
	return kc, errors.Join(errs...)
}

// dockerEntry is one registry's credentials from a docker config.
type dockerEntry struct {
	host, path string // path is a repository prefix, "" for the whole registry
	cfg        authn.AuthConfig
}

// dockerKeychain answers with the first entry matching a repository, in
// the order the kubelet tries pull secrets.
type dockerKeychain []dockerEntry

// Resolve implements authn.Keychain.
func (k dockerKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := normalizeRegistry(r.RegistryStr())
	repo := ""
	if rr, ok := r.(interface{ RepositoryStr() string }); ok {
		repo = rr.RepositoryStr()
	}
	for _, e := range k {
		if e.host != host {
			continue
		}
		if e.path != "" && repo != e.path && !strings.HasPrefix(repo, e.path+"/") {
			continue
		}
		return authn.FromConfig(e.cfg), nil
	}
	return authn.Anonymous, nil
}

func normalizeRegistry(host string) string {
	switch host {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		return "index.docker.io"
	}
	return host
}

// parseDockerConfig reads a kubernetes.io/dockerconfigjson or
// kubernetes.io/dockercfg Secret.
func parseDockerConfig(s *corev1.Secret) ([]dockerEntry, error) {
	var auths map[string]authn.AuthConfig
	switch s.Type {
	case corev1.SecretTypeDockerConfigJson:
		data := s.Data[corev1.DockerConfigJsonKey]
		if len(data) > maxPullSecretBytes {
			return nil, fmt.Errorf("%s is over %d bytes", corev1.DockerConfigJsonKey, maxPullSecretBytes)
		}
		var cfg struct {
			Auths map[string]authn.AuthConfig `json:"auths"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", corev1.DockerConfigJsonKey, err)
		}
		auths = cfg.Auths
	case corev1.SecretTypeDockercfg:
		data := s.Data[corev1.DockerConfigKey]
		if len(data) > maxPullSecretBytes {
			return nil, fmt.Errorf("%s is over %d bytes", corev1.DockerConfigKey, maxPullSecretBytes)
		}
		if err := json.Unmarshal(data, &auths); err != nil {
			return nil, fmt.Errorf("%s: %w", corev1.DockerConfigKey, err)
		}
	default:
		return nil, fmt.Errorf("type %q is not a docker config", s.Type)
	}
	var out []dockerEntry
	for key, cfg := range auths {
		if cfg.Auth != "" && cfg.Username == "" {
			// "auth" is base64(user:password); authn.FromConfig handles
			// it, but a broken one should say so here.
			raw, err := base64.StdEncoding.DecodeString(cfg.Auth)
			if err != nil || !strings.Contains(string(raw), ":") {
				return nil, fmt.Errorf("auths[%q].auth: not base64 of user:password", key)
			}
			user, pass, _ := strings.Cut(string(raw), ":")
			cfg.Username, cfg.Password, cfg.Auth = user, pass, ""
		}
		host, path := splitRegistryKey(key)
		out = append(out, dockerEntry{host: normalizeRegistry(host), path: path, cfg: cfg})
	}
	return out, nil
}

// splitRegistryKey turns "https://registry:5000/team/" into
// ("registry:5000", "team").
func splitRegistryKey(key string) (string, string) {
	if strings.Contains(key, "://") {
		if u, err := url.Parse(key); err == nil {
			key = u.Host + u.Path
		}
	}
	key = strings.Trim(key, "/")
	host, path, _ := strings.Cut(key, "/")
	if host == "index.docker.io" && (path == "v1" || path == "v2") {
		path = ""
	}
	return host, path
}

package ocisource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of a policy set artifact: OPA's own for bundles in OCI
// registries (an image config and one tar+gzip layer), with an
// artifactType and an annotation that name it a Tollgate policy set.
const (
	ArtifactType    = "application/vnd.tollgate.policyset.v1"
	LayerMediaType  = types.OCILayer      // application/vnd.oci.image.layer.v1.tar+gzip
	ConfigMediaType = types.OCIConfigJSON // application/vnd.oci.image.config.v1+json
	manifestType    = types.OCIManifestSchema1
	// AnnotationRevision carries the bundle's revision on the manifest.
	AnnotationRevision = "dev.tollgate.policy-set.revision"
	annotationTitle    = "org.opencontainers.image.title"
)

// maxManifestBytes bounds a manifest: registries accept 4 MiB at most.
const maxManifestBytes = 4 << 20

// Registry says how to reach registries: credentials, plain HTTP, and the
// transport. The zero value uses the docker keychain over HTTPS (plain
// HTTP for loopback hosts, as go-containerregistry does).
type Registry struct {
	// Insecure allows plain HTTP to any registry.
	Insecure bool
	// Keychain finds credentials (default: authn.DefaultKeychain, the
	// docker config's).
	Keychain authn.Keychain
	// Transport carries the requests (default http.DefaultTransport).
	Transport http.RoundTripper
}

func (r Registry) keychain() authn.Keychain {
	if r.Keychain == nil {
		return authn.DefaultKeychain
	}
	return r.Keychain
}

func (r Registry) transport() http.RoundTripper {
	if r.Transport == nil {
		return http.DefaultTransport
	}
	return r.Transport
}

func (r Registry) remote(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain()), remote.WithTransport(r.transport())}
}

// ParseReference reads oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:…
// (the oci:// prefix is optional).
func (r Registry) ParseReference(s string) (name.Reference, error) {
	ref := strings.TrimPrefix(s, "oci://")
	if ref == "" || strings.Contains(ref, "://") {
		return nil, fmt.Errorf("%q: want oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:DIGEST", s)
	}
	var opts []name.Option
	if r.Insecure {
		opts = append(opts, name.Insecure)
	}
	// A reference must name its registry: a policy set is never looked
	// for on Docker Hub by accident.
	host, _, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return nil, fmt.Errorf("%q: name the registry host (oci://HOST/REPO:TAG)", s)
	}
	parsed, err := name.ParseReference(ref, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return parsed, nil
}

// Push pushes the bundle as a policy set artifact to tag and returns its
// digest.
func (r Registry) Push(ctx context.Context, tag name.Reference, b *Bundle) (name.Digest, error) {
	layer := static.NewLayer(b.TarGz, LayerMediaType)
	config, err := json.Marshal(map[string]any{
		"architecture": "", "os": "",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{b.DiffID}},
	})
	if err != nil {
		return name.Digest{}, err
	}
	cfgLayer := static.NewLayer(config, ConfigMediaType)
	ropts := r.remote(ctx)
	repo := tag.Context()
	for _, l := range []v1.Layer{cfgLayer, layer} {
		if err := remote.WriteLayer(repo, l, ropts...); err != nil {
			return name.Digest{}, fmt.Errorf("pushing to %s: %w", repo, err)
		}
	}
	m := v1.Manifest{
		SchemaVersion: 2, MediaType: manifestType, ArtifactType: ArtifactType,
		Config: descriptor(config, ConfigMediaType),
		Layers: []v1.Descriptor{descriptor(b.TarGz, LayerMediaType)},
		Annotations: map[string]string{
			AnnotationRevision: b.Revision,
			annotationTitle:    "Tollgate policy set",
		},
	}
	m.Layers[0].Annotations = map[string]string{annotationTitle: "bundle.tar.gz"}
	raw, err := json.Marshal(m)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.Put(tag, rawManifest(raw), ropts...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", tag, err)
	}
	sum := sha256.Sum256(raw)
	return repo.Digest("sha256:" + hex.EncodeToString(sum[:])), nil
}

func descriptor(data []byte, mt types.MediaType) v1.Descriptor {
	sum := sha256.Sum256(data)
	return v1.Descriptor{MediaType: mt, Size: int64(len(data)), Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}}
}

type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return manifestType, nil }

// Resolve returns the digest ref names now: a tag is asked of the
// registry (HEAD, nothing downloaded), a digest is itself.
func (r Registry) Resolve(ctx context.Context, ref name.Reference) (name.Digest, error) {
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, r.remote(ctx)...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("resolving %s: %w", ref, err)
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}

// ArtifactError is a problem of the artifact itself (not the registry's
// availability): too large, not a policy set, a digest that does not
// match. Retrying does not help.
type ArtifactError struct{ msg string }

func (e *ArtifactError) Error() string { return e.msg }

func artifactErr(format string, args ...any) error {
	return &ArtifactError{fmt.Sprintf(format, args...)}
}

// fetch reads the bundle layer of the policy set at d, reading at most
// maxBytes from the registry: the manifest's size is checked as the
// registry announces it and as it is read, each layer's size as the
// manifest claims it before anything is downloaded and as it is read,
// and each digest once read.
func (r Registry) fetch(ctx context.Context, d name.Digest, maxBytes int64) ([]byte, error) {
	repo := d.Context()
	auth, err := r.keychain().Resolve(repo.Registry)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, r.transport(), []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), err)
	}
	c := &http.Client{Transport: rt}
	base := fmt.Sprintf("%s://%s/v2/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr())
	raw, err := get(ctx, c, base+"/manifests/"+d.DigestStr(), string(manifestType), min(maxManifestBytes, maxBytes), "manifest", -1)
	if err != nil {
		return nil, err
	}
	if err := checkDigest(raw, d.DigestStr(), "manifest"); err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, artifactErr("the manifest is not JSON: %v", err)
	}
	switch {
	case m.MediaType != manifestType:
		return nil, artifactErr("the manifest is a %q, not an OCI image manifest: not a policy set", m.MediaType)
	case m.Config.MediaType != ConfigMediaType:
		return nil, artifactErr("the config is a %q, want %s: not a policy set", m.Config.MediaType, ConfigMediaType)
	case len(m.Layers) != 1:
		return nil, artifactErr("the manifest lists %d layers; a policy set has one, the bundle", len(m.Layers))
	}
	l := m.Layers[0]
	left := maxBytes - int64(len(raw))
	switch {
	case l.MediaType != LayerMediaType:
		return nil, artifactErr("the layer is a %q, want %s", l.MediaType, LayerMediaType)
	case len(l.URLs) > 0:
		return nil, artifactErr("the layer names URLs to fetch it from elsewhere; refused")
	case l.Size < 0 || l.Size > left:
		return nil, artifactErr("the manifest says the bundle layer is %d bytes; at most %d are read (the limit is %d bytes in all)", l.Size, left, maxBytes)
	}
	blob, err := get(ctx, c, base+"/blobs/"+l.Digest.String(), "", l.Size, "bundle layer", l.Size)
	if err != nil {
		return nil, err
	}
	if err := checkDigest(blob, l.Digest.String(), "bundle layer"); err != nil {
		return nil, err
	}
	return blob, nil
}

// get reads url, refusing a body over limit before (by Content-Length)
// and while reading; want, when not -1, is the exact size expected.
func get(ctx context.Context, c *http.Client, url, accept string, limit int64, what string, want int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("reading the %s: HTTP %s: %s", what, resp.Status, bytes.TrimSpace(body))
	}
	if resp.ContentLength > limit {
		return nil, artifactErr("the %s is %d bytes; at most %d are read", what, resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", what, err)
	}
	switch {
	case want >= 0 && int64(len(data)) > want:
		return nil, artifactErr("the %s is larger than the manifest says (%d bytes); refused after %d bytes", what, want, len(data))
	case int64(len(data)) > limit:
		return nil, artifactErr("the %s is over %d bytes; refused after %d bytes", what, limit, len(data))
	case want >= 0 && int64(len(data)) != want:
		return nil, artifactErr("the %s is %d bytes, not the %d the manifest says", what, len(data), want)
	}
	return data, nil
}

func checkDigest(data []byte, want, what string) error {
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != want {
		return artifactErr("the %s's digest is %s, not %s", what, got, want)
	}
	return nil
}

// errorsAsArtifact reports whether err is a problem of the artifact.
func errorsAsArtifact(err error) bool {
	var ae *ArtifactError
	return errors.As(err, &ae)
}

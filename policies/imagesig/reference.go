package imagesig

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// ParseReference reads an image reference as a container runtime pulls it.
// distribution/reference (what containerd and the Rego library's
// image.parse read) decides what is a reference and which part is the
// registry; the go-containerregistry name the registry calls use is built
// from its parts. go-containerregistry's own parser differs at the edges
// (it reads localhost/app as a Docker Hub repository, and accepts names
// such as a/-b that no runtime pulls), and a policy must never judge one
// image while the runtime pulls another. Digests are sha256, as cosign
// stores signatures by them.
func ParseReference(image string, opts ...name.Option) (name.Reference, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	domain := reference.Domain(named)
	if domain == "" {
		return nil, fmt.Errorf("image %q: %q is not a registry host", image, strings.Split(reference.Path(named), "/")[0])
	}
	opts = append([]name.Option{name.WeakValidation}, opts...)
	reg, err := name.NewRegistry(domain, opts...)
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	repo := reg.Repo(reference.Path(named))
	if d, ok := named.(reference.Digested); ok {
		if d.Digest().Algorithm() != "sha256" {
			return nil, fmt.Errorf("image %q: digest algorithm %s: only sha256 digests can be verified", image, d.Digest().Algorithm())
		}
		if ref, err := name.NewDigest(image, opts...); err == nil && ref.Context() == repo {
			return ref, nil // keeps a tag written beside the digest (repo:tag@sha256:...)
		}
		return repo.Digest(d.Digest().String()), nil
	}
	tag := "latest" // what a runtime pulls when no tag is written
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return repo.Tag(tag), nil
}

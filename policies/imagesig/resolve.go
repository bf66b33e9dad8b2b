package imagesig

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Resolve pins an image reference to the digest its tag names now
// (as written, plus @sha256:...), so that every policy judging it, and the pod
// that runs it, see one digest. A reference that carries a digest is
// returned as it is, without a registry call.
func (v *Verifier) Resolve(ctx context.Context, image string, keychain authn.Keychain) (string, error) {
	var nameOpts []name.Option
	if v.opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := ParseReference(image, nameOpts...)
	if err != nil {
		return "", err
	}
	if _, ok := ref.(name.Digest); ok {
		return image, nil
	}
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	ctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
	defer cancel()
	d, err := resolve(ref, []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain), remote.WithTransport(v.transport)})
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("resolving %s to a digest: the registry did not answer within %s", ref, v.opts.Timeout)
		}
		return "", err
	}
	// The reference stays as the user wrote it, with the digest added.
	return image + "@" + d.DigestStr(), nil
}

// Matches reports whether a rule of the policy matches the image, that is
// whether judging it needs the registry.
func (p *Policy) Matches(image string) bool {
	ref, err := ParseReference(image)
	if err != nil {
		return false
	}
	repo := Repository(ref)
	for i := range p.rules {
		if p.rules[i].re.MatchString(repo) {
			return true
		}
	}
	return false
}

// ID identifies the policy's content, the Secrets it read included: two
// compilations with the same ID judge every image alike.
func (p *Policy) ID() string { return p.id }

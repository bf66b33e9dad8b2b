package imagesig

import (
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
)

// Kinds of things stored beside an image, as cosign stores them: under
// the sha256-<digest>.sig and .att tags.
const (
	kindSignature   = "signature"
	kindAttestation = "attestation"
)

// maxManifestBytes bounds a manifest (and any other registry answer but
// a payload): 4 MiB, the size registries must accept for a manifest.
const maxManifestBytes = 4 << 20

// attached are the signatures or attestations stored beside an image, in
// memory, each read once; or, when the registry's manifest lists more
// or larger layers than Options allow, the problem, with none read.
type attached struct {
	list    []oci.Signature
	problem string
}

// attachments reads the signatures or attestations of d. The caps are
// checked on the manifest, before any layer is read; each layer is then
// read through the same manifest, so what was counted is what is read.
// cosign has caps of its own (1,000 layers, COSIGN_MAX_ATTACHMENT_SIZE
// per layer, 128 MiB by default), well above what admission should read.
func (v *Verifier) attachments(d name.Digest, kind string, ropts []remote.Option) (attached, error) {
	o := ociremote.WithRemoteOptions(ropts...)
	tag, err := ociremote.SignatureTag(d, o)
	if kind == kindAttestation {
		tag, err = ociremote.AttestationTag(d, o)
	}
	if err != nil {
		return attached{}, err
	}
	sigs, err := ociremote.Signatures(tag, o)
	if err != nil {
		return attached{}, fmt.Errorf("reading the %ss: %w", kind, err)
	}
	m, err := sigs.Manifest()
	if err != nil {
		return attached{}, fmt.Errorf("reading the %ss: %w", kind, err)
	}
	if n := len(m.Layers); n > v.opts.MaxSignatures {
		return attached{problem: fmt.Sprintf("the %s manifest has %d layers; at most %d are read", kind, n, v.opts.MaxSignatures)}, nil
	}
	for i, l := range m.Layers {
		switch {
		case len(l.URLs) > 0:
			// A layer may name other places to fetch it from; a
			// verifier inside the cluster goes nowhere it is sent.
			return attached{problem: fmt.Sprintf("the %s manifest's layer %d names URLs to fetch it from elsewhere; refused", kind, i+1)}, nil
		case l.Size < 0 || l.Size > v.opts.MaxPayloadBytes:
			return attached{problem: fmt.Sprintf("the %s manifest's layer %d is %d bytes; at most %d are read", kind, i+1, l.Size, v.opts.MaxPayloadBytes)}, nil
		}
	}
	layers, err := sigs.Get()
	if err != nil {
		return attached{}, fmt.Errorf("reading the %ss: %w", kind, err)
	}
	out := attached{list: make([]oci.Signature, 0, len(layers))}
	for _, l := range layers {
		// The payload is read once here, at most the size the manifest
		// gave (and checked against its digest), not once per authority.
		c, err := static.Copy(l)
		if err != nil {
			return attached{}, fmt.Errorf("reading the %ss: %w", kind, err)
		}
		out.list = append(out.list, c)
	}
	return out, nil
}

// listed hands cosign signatures already read, as oci.Signatures.
type listed struct {
	oci.Signatures
	list []oci.Signature
}

func (l listed) Get() ([]oci.Signature, error) { return l.list, nil }

// limitTransport caps every body a registry sends: no answer (a
// manifest, an error page, a token) makes a verification read without
// end.
type limitTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.limit, limit: t.limit, host: req.URL.Host}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left, limit int64
	host        string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), 0
		return n, fmt.Errorf("%s sent more than %d bytes in one answer; at most that is read", b.host, b.limit)
	}
	b.left -= int64(n)
	return n, err
}

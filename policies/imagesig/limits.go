package imagesig

import (
	"fmt"
	"io"
	"net/http"
	"strings"

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
// manifest, an error page, a token from its auth endpoint) makes a
// verification read without end. Every registry call of the Verifier, tag
// resolution and the token exchange included, goes through it.
type limitTransport struct {
	next  http.RoundTripper
	limit int64
}

// maxAuthAnswerBytes bounds an answer from outside a registry's /v2/ API:
// its token endpoint (the realm its 401 names, which may be another host).
// A token is a few KiB; 64 KiB is go-containerregistry's own cap since
// v0.21.
const maxAuthAnswerBytes = 64 << 10

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	limit := t.limit
	if !strings.HasPrefix(req.URL.Path, "/v2/") {
		limit = min(limit, maxAuthAnswerBytes)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.ContentLength > limit {
		// Said up front: refused before a byte of it is read.
		_ = resp.Body.Close()
		return nil, tooLarge(req, limit)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: limit, limit: limit, req: req}
	return resp, nil
}

// tooLarge is the error of an answer over the cap, naming the registry
// host (or its auth endpoint's) and the cap.
func tooLarge(req *http.Request, limit int64) error {
	return fmt.Errorf("registry %s: the answer to %s %s is larger than %d bytes, the most Tollgate reads of one registry answer",
		req.URL.Host, req.Method, req.URL.Path, limit)
}

type limitedBody struct {
	io.ReadCloser
	left, limit int64
	req         *http.Request
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), 0
		return n, tooLarge(b.req, b.limit)
	}
	b.left -= int64(n)
	return n, err
}

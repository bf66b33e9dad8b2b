package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// checkImages is the image-policy part of `tollgate check`: the image
// policies found in the inputs and --image-policy files, and a verifier
// used only with --verify-images.
type checkImages struct {
	policies []namedImagePolicy
	verifier *imagesig.Verifier // nil: offline
	// results caches one verification per image and policy.
	results map[string]imageOutcome
}

type namedImagePolicy struct {
	name   string
	policy *imagesig.Policy
}

type imageOutcome struct {
	res *imagesig.Result
	err error
}

// loadCheckImages compiles the TollgateImagePolicy documents of the inputs
// and of the --image-policy files. Offline (no --verify-images), keys kept
// in Secrets are not needed: only globs and the unmatched action are used.
func loadCheckImages(ctx context.Context, f *checkFlags, docs []manifest.Document, report *output.Report) *checkImages {
	ci := &checkImages{results: map[string]imageOutcome{}}
	if f.verifyImages {
		ci.verifier = imagesig.NewVerifier(imagesig.Options{Insecure: f.insecureRegistry, Timeout: f.imageTimeout})
	}
	add := func(file string, line int, obj map[string]any) {
		raw, _ := json.Marshal(obj)
		var p v1alpha1.TollgateImagePolicy
		if err := yaml.UnmarshalStrict(raw, &p); err != nil {
			report.Problems = append(report.Problems, output.Problem{File: file, Line: line, Message: "TollgateImagePolicy: " + err.Error()})
			return
		}
		var secrets imagesig.SecretReader
		if !f.verifyImages {
			secrets = offlineKey
		}
		compiled, err := imagesig.Compile(ctx, p.Spec, secrets)
		if err != nil {
			report.Problems = append(report.Problems, output.Problem{File: file, Line: line,
				Message: fmt.Sprintf("TollgateImagePolicy %s: %v", p.Name, err)})
			return
		}
		ci.policies = append(ci.policies, namedImagePolicy{name: p.Name, policy: compiled})
	}
	for _, path := range f.imagePolicies {
		pdocs, err := manifest.Load([]string{path}, nil, manifest.Options{})
		if err != nil {
			addProblems(report, fmt.Errorf("--image-policy: %w", err))
			continue
		}
		n := 0
		for i := range pdocs {
			if d := &pdocs[i]; isImagePolicy(d) {
				add(d.File, d.Line, d.Object)
				n++
			}
		}
		if n == 0 {
			report.Problems = append(report.Problems, output.Problem{File: path, Message: "--image-policy: no TollgateImagePolicy in the file"})
		}
	}
	for i := range docs {
		if d := &docs[i]; isImagePolicy(d) {
			add(d.File, d.Line, d.Object)
		}
	}
	return ci
}

func isImagePolicy(d *manifest.Document) bool {
	return d.Kind() == "TollgateImagePolicy" && d.APIVersion() == v1alpha1.GroupVersion.String()
}

// offlineKey stands in for a key kept in a Secret when no image is
// verified: the policy's globs still say which images it judges.
func offlineKey(context.Context, v1alpha1.SecretKeyRef) ([]byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(k.Public())
}

// findings judges the images of one object. Offline, an image no rule of
// a policy matches gets that policy's unmatched action; with a verifier,
// every image is verified against the registry too.
func (ci *checkImages) findings(ctx context.Context, engine *policies.Engine, in *policies.Input) []policies.Finding {
	if len(ci.policies) == 0 {
		return nil
	}
	var out []policies.Finding
	for _, img := range engine.Images(in) {
		for _, p := range ci.policies {
			if ci.verifier == nil && p.policy.Matches(img.Image) {
				continue // needs the registry
			}
			o := ci.verify(ctx, p, img.Image)
			switch {
			case o.err != nil:
				out = append(out, imagesig.Finding(p.name, img, p.policy.FailAction(), "could not be verified: "+o.err.Error()))
			case o.res.Action != imagesig.ActionAllow:
				out = append(out, imagesig.Finding(p.name, img, o.res.Action, o.res.Reason))
			}
		}
	}
	return out
}

func (ci *checkImages) verify(ctx context.Context, p namedImagePolicy, image string) imageOutcome {
	key := p.name + "|" + image
	if o, ok := ci.results[key]; ok {
		return o
	}
	v := ci.verifier
	if v == nil {
		v = offlineVerifier // only unmatched images reach here: no registry call
	}
	res, err := v.Verify(ctx, p.policy, image, nil)
	o := imageOutcome{res, err}
	ci.results[key] = o
	return o
}

var offlineVerifier = imagesig.NewVerifier(imagesig.Options{Timeout: time.Second})

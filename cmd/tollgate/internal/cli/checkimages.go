package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/cmd/tollgate/internal/output"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	"github.com/tollgate-dev/tollgate/policies/manifest"
	"github.com/tollgate-dev/tollgate/policies/review"
)

// loadCheckImages compiles the TollgateImagePolicy documents of the inputs
// and of the --image-policy files; the review core's image gate judges with
// them (offline without --verify-images). Offline (no --verify-images), keys kept
// in Secrets are not needed: only globs and the unmatched action are used.
func loadCheckImages(ctx context.Context, f *checkFlags, docs []manifest.Document, report *output.Report) []review.ImagePolicy {
	var out []review.ImagePolicy
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
		out = append(out, review.ImagePolicy{Name: p.Name, Policy: compiled})
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
	return out
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

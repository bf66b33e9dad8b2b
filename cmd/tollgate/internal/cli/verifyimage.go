package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
)

type verifyImageFlags struct {
	policy, key string
	insecure    bool
	timeout     time.Duration
	format      string
}

func newVerifyImageCmd(stdio IO) *cobra.Command {
	var f verifyImageFlags
	c := &cobra.Command{
		Use:   "verify-image [--policy FILE | --key PEM] IMAGE...",
		Short: "Verify image signatures with cosign against an image policy",
		Long: `verify-image checks each image the way the admission webhook does: it finds
the image policy rule whose glob matches the image, resolves a tag to its digest
once, verifies that digest's cosign signatures against the rule's authorities
(keys, or keyless identities) and the attestations they must have made (with
their Rego policies), and prints what was checked, the reference pinned to the
verified digest, and why an image passed or failed. Secrets cannot be read
here: a policy file gives its keys, certificates and trusted roots inline.

Exit status: 0 when every image is allowed, 1 when one is not (unsigned,
signed by the wrong key, unreachable), 2 for a usage or policy error.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerifyImage(cmd.Context(), &f, args, stdio)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.policy, "policy", "", "TollgateImagePolicy YAML file")
	fl.StringVar(&f.key, "key", "", "a PEM public key file: shorthand for a policy requiring its signature on every image")
	fl.BoolVar(&f.insecure, "insecure-registry", false, "allow plain-HTTP registries")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Second, "deadline for the registry calls of one image")
	fl.StringVarP(&f.format, "format", "f", "text", "text or json")
	return c
}

func runVerifyImage(ctx context.Context, f *verifyImageFlags, images []string, stdio IO) error {
	if (f.policy == "") == (f.key == "") {
		return fmt.Errorf("give exactly one of --policy and --key")
	}
	if f.format != "text" && f.format != "json" {
		return fmt.Errorf("--format %q: want text or json", f.format)
	}
	spec, err := imagePolicySpec(f)
	if err != nil {
		return err
	}
	p, err := imagesig.Compile(ctx, spec, nil)
	if err != nil {
		return fmt.Errorf("image policy: %w", err)
	}
	v := imagesig.NewVerifier(imagesig.Options{Insecure: f.insecure, Timeout: f.timeout})
	var results []*imagesig.Result
	failed := false
	for _, img := range images {
		res, err := v.Verify(ctx, p, img, nil)
		if err != nil {
			res = &imagesig.Result{Image: img, Action: imagesig.ActionDeny, Reason: err.Error()}
		}
		if res.Action != imagesig.ActionAllow {
			failed = true
		}
		results = append(results, res)
	}
	if f.format == "json" {
		enc := json.NewEncoder(stdio.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			writeImageResult(stdio.Out, r)
		}
	}
	if failed {
		return &exitError{code: ExitFindings}
	}
	return nil
}

func imagePolicySpec(f *verifyImageFlags) (v1alpha1.ImagePolicySpec, error) {
	if f.key != "" {
		pem, err := readLimitedFile(f.key, 64<<10)
		if err != nil {
			return v1alpha1.ImagePolicySpec{}, fmt.Errorf("--key: %w", err)
		}
		return v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageRule{{
			Glob:        "**",
			Authorities: []v1alpha1.Authority{{Name: f.key, Key: &v1alpha1.KeyAuthority{Data: string(pem)}}},
		}}}, nil
	}
	data, err := readLimitedFile(f.policy, 1<<20)
	if err != nil {
		return v1alpha1.ImagePolicySpec{}, fmt.Errorf("--policy: %w", err)
	}
	var obj v1alpha1.TollgateImagePolicy
	if err := yaml.UnmarshalStrict(data, &obj); err != nil {
		return v1alpha1.ImagePolicySpec{}, fmt.Errorf("--policy %s: %w", f.policy, err)
	}
	if obj.APIVersion != "tollgate.dev/v1alpha1" || obj.Kind != "TollgateImagePolicy" {
		return v1alpha1.ImagePolicySpec{}, fmt.Errorf("--policy %s: want apiVersion tollgate.dev/v1alpha1, kind TollgateImagePolicy; got %q, %q", f.policy, obj.APIVersion, obj.Kind)
	}
	return obj.Spec, nil
}

func readLimitedFile(path string, limit int64) ([]byte, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over the %d byte limit", path, limit)
	}
	return data, nil
}

func writeImageResult(w io.Writer, r *imagesig.Result) {
	mark := "✓"
	switch r.Action {
	case imagesig.ActionWarn:
		mark = "!"
	case imagesig.ActionDeny:
		mark = "✗"
	}
	fmt.Fprintf(w, "%s %s\n", mark, r.Image)
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "    %-8s %s\n", k, v)
		}
	}
	field("pinned", r.Pinned)
	if r.Pinned == "" {
		field("digest", r.Digest)
	}
	field("rule", r.Rule)
	for _, a := range r.Passed {
		field("signed", "by "+a)
	}
	// Each attestation on a line of its own; a failed one with its
	// policy's messages under it.
	for _, a := range r.Attestations {
		what := fmt.Sprintf("%s/%s (%s)", a.Authority, a.Name, a.PredicateType)
		if a.Passed {
			field("attested", what)
			continue
		}
		field("failed", what)
		for _, msg := range a.Denied {
			fmt.Fprintf(w, "    %-8s   %s\n", "", msg)
		}
		if a.Reason != "" {
			fmt.Fprintf(w, "    %-8s   %s\n", "", a.Reason)
		}
	}
	field("action", r.Action)
	field("reason", r.Reason)
}

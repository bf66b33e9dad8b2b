package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/policies/ocisource"
)

// newPolicyCmd is `tollgate policy`: policy sets as signed OCI artifacts.
func newPolicyCmd(stdio IO) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Distribute policy sets as signed OCI artifacts (push, sign, verify)",
		Long: `A policy set is a directory of Rego modules, data.json or data.yaml documents
and policy objects (TollgatePolicy, TollgateImagePolicy, a TollgateConfig,
Gatekeeper templates and constraints, ValidatingAdmissionPolicies, Kyverno
policies). push packs it as an OPA bundle and pushes it to a registry; sign
signs it with a cosign key; verify checks the signature. Servers follow it
with tollgate serve --policy-source, and tollgate check --policy-source
judges manifests with exactly the same set.`,
	}
	c.AddCommand(newPolicyPushCmd(stdio), newPolicySignCmd(stdio), newPolicyVerifyCmd(stdio))
	return c
}

func newPolicyPushCmd(stdio IO) *cobra.Command {
	var (
		insecure bool
		revision string
	)
	c := &cobra.Command{
		Use:   "push DIR oci://HOST/REPO:TAG",
		Short: "Pack a policy set directory as an OPA bundle and push it to a registry",
		Long: `push checks every file of the set as the server would load it (Rego parses,
data and objects are well-formed; the error names the file and line), packs
it as an OPA bundle (.manifest with the revision and roots) and pushes it as
an OCI artifact: OPA's bundle media types (an image config and one
application/vnd.oci.image.layer.v1.tar+gzip layer) with the artifact type
` + ocisource.ArtifactType + `. Credentials come from the docker config
(docker login). The digest pushed is printed on standard output.`,
		Example: `  tollgate policy push ./policies oci://registry.example.com/platform/policies:v3`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg := ocisource.Registry{Insecure: insecure}
			ref, err := reg.ParseReference(args[1])
			if err != nil {
				return err
			}
			if _, ok := ref.(name.Tag); !ok {
				return fmt.Errorf("%s: push to a tag (oci://HOST/REPO:TAG); the digest is printed", args[1])
			}
			st, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			if !st.IsDir() {
				return fmt.Errorf("%s: not a directory", args[0])
			}
			b, err := ocisource.Pack(os.DirFS(args[0]), ocisource.PackOptions{Revision: revision})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, s := range b.Skipped {
				fmt.Fprintf(stdio.Err, "skipped %s (not Rego, data or a policy object)\n", s)
			}
			fmt.Fprintf(stdio.Err, "packed %d Rego modules, %d data files, %d objects (revision %s, roots %s, %d bytes)\n",
				b.Modules, b.DataFiles, b.Objects, b.Revision, strings.Join(b.Roots, ","), len(b.TarGz))
			d, err := reg.Push(cmd.Context(), ref, b)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdio.Out, d.String())
			return nil
		},
	}
	c.Flags().BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry (loopback registries are reached over HTTP anyway)")
	c.Flags().StringVar(&revision, "revision", "", "the bundle's revision (default: sha256 of the set's files)")
	return c
}

func newPolicySignCmd(stdio IO) *cobra.Command {
	var (
		insecure bool
		key      string
	)
	c := &cobra.Command{
		Use:   "sign oci://HOST/REPO@sha256:DIGEST",
		Short: "Sign a pushed policy set with a cosign key",
		Long: `sign signs a policy set as cosign sign --key signs an image: a simple-signing
payload naming the digest, stored beside it under the sha256-<digest>.sig tag,
so cosign verify --key checks it too. A tag is resolved to its digest first,
and the digest signed is printed. The key's password is read from
COSIGN_PASSWORD.`,
		Example: `  COSIGN_PASSWORD=... tollgate policy sign --key cosign.key oci://registry.example.com/platform/policies@sha256:...`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return fmt.Errorf("--key: give the cosign private key (cosign.key)")
			}
			pem, err := readLimitedFile(key, 64<<10)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			signer, err := ocisource.LoadPrivateKey(pem, []byte(os.Getenv("COSIGN_PASSWORD")))
			if err != nil {
				return fmt.Errorf("--key %s: %w (is COSIGN_PASSWORD set?)", key, err)
			}
			reg := ocisource.Registry{Insecure: insecure}
			d, err := resolveArg(cmd.Context(), reg, args[0])
			if err != nil {
				return err
			}
			if err := reg.Sign(cmd.Context(), d, signer); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "signed %s\n", d)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "cosign private key file (cosign generate-key-pair's cosign.key)")
	c.Flags().BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry")
	return c
}

func newPolicyVerifyCmd(stdio IO) *cobra.Command {
	var sf sourceFlags
	c := &cobra.Command{
		Use:   "verify oci://HOST/REPO:TAG",
		Short: "Verify a policy set's signature and that it loads",
		Long: `verify checks the policy set's signature against the public keys, then pulls
and parses it as a server following it would (bounded reads, every file
parsed), and prints its digest and revision. The exit status is 2 when it
is unsigned, signed by another key, or does not load.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sf.ref = args[0]
			set, err := sf.pull(cmd.Context())
			if err != nil {
				return err
			}
			ref, err := ocisource.Registry{Insecure: sf.insecure}.ParseReference(set.Ref)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "verified %s (revision %s: %d Rego modules, %d objects)\n",
				ref.Context().Digest(set.Digest), set.Revision, len(set.Modules), len(set.Objects))
			return nil
		},
	}
	c.Flags().StringArrayVar(&sf.keys, "key", nil, "cosign public key file (cosign.pub) the set must be signed by; repeatable: any one")
	c.Flags().BoolVar(&sf.insecure, "insecure", false, "allow a plain-HTTP registry")
	return c
}

// resolveArg parses a reference and resolves a tag to its digest.
func resolveArg(ctx context.Context, reg ocisource.Registry, arg string) (name.Digest, error) {
	ref, err := reg.ParseReference(arg)
	if err != nil {
		return name.Digest{}, err
	}
	return reg.Resolve(ctx, ref)
}

// sourceFlags are the policy source flags of check and serve.
type sourceFlags struct {
	ref      string
	keys     []string
	insecure bool
	interval time.Duration
}

func (f *sourceFlags) register(c *cobra.Command, serving bool) {
	c.Flags().StringVar(&f.ref, "policy-source", "", "policy set to load from a registry (oci://HOST/REPO:TAG, pushed with tollgate policy push); verified with --policy-source-key before anything in it is read")
	c.Flags().StringArrayVar(&f.keys, "policy-source-key", nil, "cosign public key file the policy set must be signed by; repeatable: any one")
	c.Flags().BoolVar(&f.insecure, "policy-source-insecure", false, "allow a plain-HTTP registry for --policy-source")
	if serving {
		c.Flags().DurationVar(&f.interval, "policy-source-interval", time.Minute, "how often the --policy-source tag is resolved (registry errors back off up to ten times this)")
	}
}

// trust reads the public keys.
func (f *sourceFlags) trust() (*ocisource.Trust, error) {
	keys := map[string][]byte{}
	for _, k := range f.keys {
		pem, err := readLimitedFile(k, 64<<10)
		if err != nil {
			return nil, fmt.Errorf("--policy-source-key: %w", err)
		}
		keys[k] = pem
	}
	t, err := ocisource.NewTrust(keys)
	if err != nil {
		return nil, fmt.Errorf("--policy-source-key: %w", err)
	}
	return t, nil
}

// pull verifies and reads the set once.
func (f *sourceFlags) pull(ctx context.Context) (*ocisource.Set, error) {
	t, err := f.trust()
	if err != nil {
		return nil, err
	}
	set, err := ocisource.Pull(ctx, ocisource.Registry{Insecure: f.insecure}, f.ref, t, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.ref, err)
	}
	return set, nil
}

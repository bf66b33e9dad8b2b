package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/compliance"
)

func newReportVerifyCmd(stdio IO) *cobra.Command {
	var key, sigPath string
	c := &cobra.Command{
		Use:   "verify --key cosign.pub [--signature FILE] REPORT",
		Short: "Check a report's signature: that it was signed with the key's pair and not edited since",
		Long: `Verify checks the signature tollgate report --sign-key wrote (or cosign
sign-blob, with a cosign key) against the report's bytes and the public key.

Exit status: 0 the signature is valid, 1 it is not (the report was edited or
signed with another key), 2 usage or input error.`,
		Example: `  tollgate report verify --key cosign.pub report.html
  tollgate report verify --key cosign.pub --signature report.sig report.html`,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("verify needs exactly one REPORT, got %d", len(args))
			}
			if key == "" {
				return errors.New("--key is required: the cosign public key (cosign.pub)")
			}
			report := args[0]
			if sigPath == "" {
				sigPath = report + ".sig"
			}
			pub, err := readLimitedFile(key, maxKeyBytes)
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			sig, err := readLimitedFile(sigPath, maxKeyBytes)
			if err != nil {
				return fmt.Errorf("--signature: %w", err)
			}
			file, err := os.Open(report)
			if err != nil {
				return err
			}
			defer file.Close()
			err = compliance.Verify(pub, file, sig)
			switch {
			case errors.Is(err, compliance.ErrBadSignature):
				fmt.Fprintf(stdio.Err, "tollgate: %s: %v\n", report, err)
				return &exitError{ExitFindings}
			case err != nil:
				return fmt.Errorf("--key %s: %w", key, err)
			}
			fmt.Fprintf(stdio.Out, "Verified OK: %s is signed by the key of %s (signature %s)\n", report, key, sigPath)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "cosign public key (PEM) to verify with")
	c.Flags().StringVar(&sigPath, "signature", "", "signature file (default: REPORT.sig)")
	return c
}

//go:build tools

// Package tools pins the Trivy that Tollgate's image scanner runs: the
// `trivy` command (its image scanner, its client and its server) at the
// version in this module's go.mod, built from the Go module proxy:
//
//	GOEXPERIMENT=jsonv2 go build -o ../../bin/trivy/trivy github.com/aquasecurity/trivy/cmd/trivy
//
// Trivy v0.74 imports encoding/json/v2, which Go 1.26 serves only under the
// jsonv2 experiment. This module is separate from Tollgate's own so that
// neither the experiment nor Trivy's dependency tree enters Tollgate's
// build: Tollgate runs this binary as its own process and reads its JSON.
package tools

import (
	_ "github.com/aquasecurity/trivy/cmd/trivy"
)

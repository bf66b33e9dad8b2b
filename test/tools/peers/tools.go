//go:build tools

// Package tools pins the peer admission engines that `make bench-peers`
// measures Tollgate against: Gatekeeper's manager and Kyverno's admission
// controller, built from the Go module proxy at the versions in go.mod.
package tools

import (
	_ "github.com/kyverno/kyverno/cmd/kyverno"
	_ "github.com/open-policy-agent/gatekeeper/v3"
)

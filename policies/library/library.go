// Package library embeds Tollgate's built-in Rego policy library: the Pod
// Security Standards (baseline and restricted), ownership labels, naming,
// resource requests and caps, cloud instance sizes, image provenance and image
// vulnerabilities, and the cluster's RBAC (the CIS 5.1 controls), together
// with the tollgate.lib.* helper packages they import. The engine loads it as the
// default policy set; users add their own policies beside it.
package library

import (
	"embed"
	"io/fs"
)

// Version is the version of the built-in policy library. It changes when a
// policy is added, removed or changes what it admits.
const Version = "0.6.0"

// The tree holds the tests beside the policies; the engine skips files
// ending in _test.rego when it loads a policy set.
//
//go:embed lib/*.rego
//go:embed cluster/*.rego images/*.rego naming/*.rego ownership/*.rego resources/*.rego
//go:embed pss/baseline/*.rego pss/restricted/*.rego
//go:embed rbac/*.rego
var tree embed.FS

// FS returns the library's Rego files, rooted so that paths read like
// pss/baseline/privileged.rego and lib/pods.rego. It includes the
// _test.rego files that sit beside the policies.
func FS() fs.FS { return tree }

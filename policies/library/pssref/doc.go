// Package pssref holds the Pod Security Standards differential tests: the
// library's PSS policies judged against the upstream reference,
// k8s.io/pod-security-admission.
//
// It is a module of its own because the main module cannot link the
// upstream reference: Kyverno's engine needs its fork of the module
// (github.com/kyverno/pod-security-admission, which adds field errors to
// the checks and predates upstream's split of procMount into a baseline and
// a restricted check), and a replace directive applies to the whole build.
// This module requires Tollgate from the parent directory without that
// replace, so k8s.io/pod-security-admission here is the upstream release
// the main module requires. Run its tests from this directory:
//
//	go test ./...
package pssref

// Package ocisource distributes policy sets as signed OCI artifacts: it
// packs a directory of policies into an OPA bundle, pushes it to a
// registry, signs and verifies it with cosign, and follows a tag from a
// server (Source), verifying each new digest against the trusted keys
// before anything in it is parsed and keeping the last good set when a new
// one does not verify, parse or compile. Every read from the registry is
// bounded, so a hostile or broken artifact costs a known amount of memory.
package ocisource

// Package webhook is the HTTP adapter of Tollgate's admission server: the
// mutating and validating AdmissionReview endpoints read a review, decide
// what needs no judgement (deletes, status-only updates, exempt
// namespaces), read the namespace, ask the review core (policies/review)
// and answer in the API server's terms, with the decision log and metrics
// written. It also renders the webhook configurations Tollgate registers
// and reads registry credentials from pull secrets. Certificates live in
// the certs subpackage; the wiring of `tollgate serve` in cmd/tollgate/serve.
package webhook

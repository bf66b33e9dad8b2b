// Package webhook is Tollgate's admission server (`tollgate serve`): the
// mutating and validating AdmissionReview endpoints that turn the policy
// engine's defaults and findings into admission responses, the image gate
// that verifies container images and pins them to the verified digest, the
// loader that keeps policies, config, exceptions and image policies in step
// with the cluster, the webhook configurations Tollgate registers, its
// metrics and its decision log. Certificates live in the certs subpackage.
package webhook

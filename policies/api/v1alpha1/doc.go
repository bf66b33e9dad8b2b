// Package v1alpha1 holds Tollgate's cluster API, group tollgate.dev version
// v1alpha1: TollgatePolicy (Rego policies loaded from the cluster),
// TollgateConfig (the engine's configuration) and TollgateException (a
// waiver with a reason, a ticket, an approver and an expiry), and ImageScan
// (an image's vulnerability scan, kept by the cluster's image scanner). The kinds carry
// the Tollgate prefix so they never collide with Kyverno's Policy and
// PolicyException or Gatekeeper's Config in `kubectl get`.
//
// +kubebuilder:object:generate=true
// +groupName=tollgate.dev
package v1alpha1

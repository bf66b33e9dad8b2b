package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ImageScan is the vulnerability scan of one image reference, as pods and
// pod templates write it (nginx:1.27, registry.corp/app@sha256:...). The
// cluster's image scanner keeps its status: the digest the reference runs
// as, and what Trivy found in it. References that resolve to the same
// digest share one scan, which is written to each of them. Admission and
// the audit read these objects (not the scanner's memory), so results
// survive restarts and leader changes.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tgis,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.digest`
// +kubebuilder:printcolumn:name="Critical",type=integer,JSONPath=`.status.counts.CRITICAL`
// +kubebuilder:printcolumn:name="High",type=integer,JSONPath=`.status.counts.HIGH`
// +kubebuilder:printcolumn:name="Stale",type=string,JSONPath=`.status.conditions[?(@.type=="Stale")].status`,priority=1
// +kubebuilder:printcolumn:name="Scanned",type=date,JSONPath=`.status.scannedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ImageScan struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImageScanSpec   `json:"spec"`
	Status ImageScanStatus `json:"status,omitempty"`
}

// Phases of an ImageScan.
const (
	// ImageScanPending: not scanned yet (queued).
	ImageScanPending = "Pending"
	// ImageScanScanned: status holds a result.
	ImageScanScanned = "Scanned"
	// ImageScanFailed: the last scan failed; Error says why.
	ImageScanFailed = "Failed"
)

// Condition types and reasons of an ImageScan.
const (
	// ConditionStale is True when the result came from a vulnerability
	// database older than the scanner's maximum age, or the database
	// cannot be read: the result is shown but never counts as current.
	ConditionStale = "Stale"
	// ConditionSBOMStored is False when the image's SBOM was too large to
	// keep in the cluster (the message says how to produce it).
	ConditionSBOMStored = "SBOMStored"
)

// ImageScanSpec names the image and where it runs: the credentials the
// scanner pulls it with are those of a pod that runs it.
type ImageScanSpec struct {
	// Image is the reference as written in the pod spec.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image"`
	// Namespace, ServiceAccountName and ImagePullSecrets are those of one
	// pod running the image: the scanner reads the registry credentials
	// the kubelet would use.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// +kubebuilder:validation:MaxItems=32
	// +optional
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
}

// ImageScanStatus is the scanner's result for the image's digest.
type ImageScanStatus struct {
	// Phase is Pending, Scanned or Failed.
	// +kubebuilder:validation:Enum=Pending;Scanned;Failed
	// +optional
	Phase string `json:"phase,omitempty"`
	// Digest is the image's repository digest (sha256:...): the one a
	// running container reported, else the tag's resolution.
	// +optional
	Digest string `json:"digest,omitempty"`
	// OS is the image's operating system ("debian 12.5").
	// +optional
	OS string `json:"os,omitempty"`
	// Packages counts the packages found.
	// +optional
	Packages int32 `json:"packages,omitempty"`
	// Counts are the vulnerabilities by severity (CRITICAL, HIGH, MEDIUM,
	// LOW, UNKNOWN); Fixable those of them with a fixed version.
	// +optional
	Counts map[string]int32 `json:"counts,omitempty"`
	// +optional
	Fixable map[string]int32 `json:"fixable,omitempty"`
	// Vulnerabilities lists the most severe first, at most 200;
	// Truncated says more were found (Counts counts them all).
	// +kubebuilder:validation:MaxItems=200
	// +optional
	Vulnerabilities []ImageVulnerability `json:"vulnerabilities,omitempty"`
	// +optional
	Truncated bool `json:"truncated,omitempty"`
	// ScannedAt is when the scan finished; DBUpdatedAt when the
	// vulnerability database it used was built.
	// +optional
	ScannedAt *metav1.Time `json:"scannedAt,omitempty"`
	// +optional
	DBUpdatedAt *metav1.Time `json:"dbUpdatedAt,omitempty"`
	// LastSeen is when a pod was last seen running the image; an
	// ImageScan unseen for the scanner's retention period is deleted.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`
	// Error says why the last scan failed.
	// +optional
	Error string `json:"error,omitempty"`
	// SBOM names the ConfigMap (in Tollgate's namespace) holding the
	// image's CycloneDX SBOM, gzipped, under key sbom.cdx.json.gz.
	// +optional
	SBOM string `json:"sbom,omitempty"`
	// Conditions: Stale, SBOMStored.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ImageVulnerability is one advisory that applies to one package of the
// image.
type ImageVulnerability struct {
	// ID is the advisory id (CVE-2024-1234, GHSA-...).
	ID string `json:"id"`
	// Package is the affected package; Installed its version in the
	// image; Fixed the versions that fix it, when any do.
	Package   string `json:"package"`
	Installed string `json:"installed,omitempty"`
	// +optional
	Fixed    string `json:"fixed,omitempty"`
	Severity string `json:"severity"`
	// +optional
	Title string `json:"title,omitempty"`
	// Target is where the package was found (the OS, or a file).
	// +optional
	Target string `json:"target,omitempty"`
	// Class is os-pkgs or lang-pkgs; Type the ecosystem.
	// +optional
	Class string `json:"class,omitempty"`
	// +optional
	Type string `json:"type,omitempty"`
}

// ImageScanList is a list of ImageScan.
//
// +kubebuilder:object:root=true
type ImageScanList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageScan `json:"items"`
}

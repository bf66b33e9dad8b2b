package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TollgateProfile is one namespace profile (a golden path, an innovation
// path) kept in the cluster beside the config's profiles.definitions: its
// name is the value of the Namespace label that selects it, its spec the
// same document as one definition (policies' actions, skipped mutations,
// parameters, namespace defaults, budget). One of the same name as a
// config definition replaces it. An invalid change is reported in the
// status and the last good version stays in force.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tgprof,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Description",type=string,JSONPath=`.spec.description`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TollgateProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is validated as a profile definition when loaded.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Spec   apiextensionsv1.JSON `json:"spec"`
	Status ObjectStatus         `json:"status,omitempty"`
}

// TollgateProfileList is a list of TollgateProfile.
//
// +kubebuilder:object:root=true
type TollgateProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TollgateProfile `json:"items"`
}

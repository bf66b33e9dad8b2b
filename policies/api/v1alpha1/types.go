package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is tollgate.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "tollgate.dev", Version: "v1alpha1"}

// AddToScheme registers the kinds with a scheme, for clients and caches.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&TollgatePolicy{}, &TollgatePolicyList{},
		&TollgateConfig{}, &TollgateConfigList{},
		&TollgateException{}, &TollgateExceptionList{},
		&TollgateImagePolicy{}, &TollgateImagePolicyList{},
		&Budget{}, &BudgetList{},
		&ImageScan{}, &ImageScanList{},
		&TollgateProfile{}, &TollgateProfileList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Condition types and reasons written to the status of Tollgate objects.
const (
	// ConditionReady is True once the object is loaded and in force.
	ConditionReady = "Ready"
	// ReasonLoaded: the object is in force.
	ReasonLoaded = "Loaded"
	// ReasonInvalid: the object could not be loaded; the last good version
	// (if any) stays in force.
	ReasonInvalid = "Invalid"
	// ReasonNotHonoured: an exception outside the namespaces the config
	// designates, or expired.
	ReasonNotHonoured = "NotHonoured"
)

// TollgatePolicy is a Rego policy (OPA v1) loaded from the cluster. Changes
// hot-reload; a version that does not compile is reported in the status and
// the last good one stays in force.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tgp,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Policies",type=string,JSONPath=`.status.policies`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TollgatePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TollgatePolicySpec `json:"spec"`
	Status PolicyStatus       `json:"status,omitempty"`
}

// TollgatePolicySpec is where the policy comes from and how it applies.
//
// +kubebuilder:validation:XValidation:rule="has(self.rego) != has(self.bundle)",message="set exactly one of rego and bundle"
type TollgatePolicySpec struct {
	// Rego is the policy source: one or more modules, each starting with a
	// `# METADATA` block whose custom.id names the policy, with a
	// `violation` rule.
	// +optional
	// +kubebuilder:validation:MaxLength=1048576
	Rego string `json:"rego,omitempty"`
	// Bundle is an OPA bundle (tar.gz, as `opa build` writes) fetched over
	// HTTP(S).
	// +optional
	Bundle *BundleSource `json:"bundle,omitempty"`
	// Match limits the policies to some kinds and namespaces.
	// +optional
	Match *PolicyMatch `json:"match,omitempty"`
	// Action overrides the action in the policies' metadata.
	// +optional
	// +kubebuilder:validation:Enum=enforce;warn;audit;disabled
	Action string `json:"action,omitempty"`
	// Parameters are visible to the policies as
	// input.config.parameters[<policy id>].
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Parameters *apiextensionsv1.JSON `json:"parameters,omitempty"`
}

// BundleSource locates an OPA bundle.
type BundleSource struct {
	// URL is an http or https URL of a bundle tar.gz.
	// +kubebuilder:validation:Pattern=`^https?://`
	URL string `json:"url"`
	// SHA256 pins the bundle's content; a bundle with another digest is
	// rejected.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-f0-9]{64}$`
	SHA256 string `json:"sha256,omitempty"`
}

// PolicyMatch narrows where a policy applies.
type PolicyMatch struct {
	// Kinds are "Kind" or "group/Kind"; empty means what the policy's
	// metadata says.
	// +optional
	Kinds []string `json:"kinds,omitempty"`
	// Namespaces (names or globs) the policy is limited to.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// ExcludedNamespaces (names or globs) the policy skips.
	// +optional
	ExcludedNamespaces []string `json:"excludedNamespaces,omitempty"`
}

// PolicyStatus reports whether the policy is in force.
type PolicyStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Policies are the policy ids the source defines.
	// +optional
	Policies []string `json:"policies,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TollgatePolicyList is a list of TollgatePolicy.
//
// +kubebuilder:object:root=true
type TollgatePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TollgatePolicy `json:"items"`
}

// TollgateConfig holds the engine's configuration in its spec: the same
// document `tollgate check --config` reads (see config.example.yaml). The
// server uses the one named by its --config-name flag ("tollgate" by
// default); an invalid change is reported in the status and the last good
// config stays in force.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tgc,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TollgateConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is validated against Tollgate's config schema when loaded.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Spec   apiextensionsv1.JSON `json:"spec"`
	Status ObjectStatus         `json:"status,omitempty"`
}

// ObjectStatus is the status of a config or an exception.
type ObjectStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TollgateConfigList is a list of TollgateConfig.
//
// +kubebuilder:object:root=true
type TollgateConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TollgateConfig `json:"items"`
}

// TollgateException waives some policies for some objects until it
// expires. It counts only in the namespaces the config's
// exceptions.namespaces designates, so only the platform team can grant
// one; every waived finding names it in reports.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=tge,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Policies",type=string,JSONPath=`.spec.policies`
// +kubebuilder:printcolumn:name="Ticket",type=string,JSONPath=`.spec.ticket`
// +kubebuilder:printcolumn:name="Approver",type=string,JSONPath=`.spec.approver`
// +kubebuilder:printcolumn:name="Expiry",type=string,JSONPath=`.spec.expiry`
// +kubebuilder:printcolumn:name="Honoured",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
type TollgateException struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TollgateExceptionSpec `json:"spec"`
	Status ObjectStatus          `json:"status,omitempty"`
}

// TollgateExceptionSpec says what is waived, for what, why, and until when.
type TollgateExceptionSpec struct {
	// Policies are the policy ids waived; wildcards are not accepted.
	// +kubebuilder:validation:MinItems=1
	Policies []string `json:"policies"`
	// Match selects the objects waived; every field given must match.
	Match ExceptionMatch `json:"match"`
	// Reason says why the policy cannot be met.
	// +kubebuilder:validation:MinLength=1
	Reason string `json:"reason"`
	// Ticket is where the exception was agreed (an issue or change id).
	// +optional
	Ticket string `json:"ticket,omitempty"`
	// Approver is who agreed to it.
	// +kubebuilder:validation:MinLength=1
	Approver string `json:"approver"`
	// Expiry is when the exception stops counting.
	// +kubebuilder:validation:Format=date-time
	Expiry metav1.Time `json:"expiry"`
}

// ExceptionMatch selects objects by namespace, kind, name and labels.
type ExceptionMatch struct {
	// Namespaces are names or globs.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// Kinds are "Kind" or "group/Kind".
	// +optional
	Kinds []string `json:"kinds,omitempty"`
	// Names are object names or globs ("legacy-app*" covers a Deployment,
	// its ReplicaSets and its Pods).
	// +optional
	Names []string `json:"names,omitempty"`
	// Labels the object must carry with these values.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// TollgateExceptionList is a list of TollgateException.
//
// +kubebuilder:object:root=true
type TollgateExceptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TollgateException `json:"items"`
}

// TollgateImagePolicy says which images the platform trusts: image patterns
// (globs on the canonical reference) mapped to authorities whose signatures
// an image must carry. The admission webhook resolves each tag to a digest
// once, verifies that digest and pins the image to it. The same document
// can be given to the CLI as a file.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=tgip,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Unmatched",type=string,JSONPath=`.spec.unmatched`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TollgateImagePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ImagePolicySpec `json:"spec"`
	Status ObjectStatus    `json:"status,omitempty"`
}

// ImagePolicySpec maps image patterns to the authorities that must have
// signed them.
type ImagePolicySpec struct {
	// Images are the rules, first match wins.
	// +kubebuilder:validation:MinItems=1
	Images []ImageRule `json:"images"`
	// Mode: Enforce denies an image that fails verification; Warn admits it
	// with a warning.
	// +kubebuilder:validation:Enum=Enforce;Warn
	// +kubebuilder:default=Enforce
	Mode string `json:"mode,omitempty"`
	// Unmatched says what to do with images no rule matches.
	// +kubebuilder:validation:Enum=allow;warn;deny
	// +kubebuilder:default=deny
	Unmatched string `json:"unmatched,omitempty"`
}

// ImageRule is one image pattern and who must have signed it.
type ImageRule struct {
	// Glob matches the canonical reference without tag or digest, such as
	// "registry.corp.example/team/*" ("*" stays within one path segment,
	// "**" crosses them).
	// +kubebuilder:validation:MinLength=1
	Glob string `json:"glob"`
	// Authorities are the signers; by default any one of them is enough.
	// +kubebuilder:validation:MinItems=1
	Authorities []Authority `json:"authorities"`
	// Require is "any" (one authority suffices) or "all".
	// +kubebuilder:validation:Enum=any;all
	// +kubebuilder:default=any
	Require string `json:"require,omitempty"`
}

// Authority is one signer: a key or a keyless identity, and the
// attestations the image must carry from it. An authority is satisfied
// when the image carries its signature and, for each attestation listed,
// a verified attestation of that type that passes its policy.
//
// +kubebuilder:validation:XValidation:rule="has(self.key) != has(self.keyless)",message="set key or keyless"
type Authority struct {
	// Name identifies the authority in messages.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key is a public key.
	// +optional
	Key *KeyAuthority `json:"key,omitempty"`
	// Keyless is a signer identified by a short-lived certificate (sigstore
	// Fulcio), trusted through the roots or trusted root given here.
	// +optional
	Keyless *KeylessAuthority `json:"keyless,omitempty"`
	// Attestations the image must carry, each signed by this authority.
	// +optional
	// +listType=map
	// +listMapKey=name
	Attestations []Attestation `json:"attestations,omitempty"`
}

// KeyAuthority is a public key, inline or in a Secret.
type KeyAuthority struct {
	// Data is a PEM public key (ECDSA, Ed25519 or RSA).
	// +optional
	Data string `json:"data,omitempty"`
	// SecretRef names a Secret key holding the PEM.
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
}

// KeylessAuthority trusts certificates issued to some identities by a
// certificate authority (Fulcio, public or private). Everything needed to
// verify comes from the policy: nothing is fetched from the public
// sigstore (no TUF), so a private deployment works offline.
//
// +kubebuilder:validation:XValidation:rule="has(self.roots) != has(self.trustedRoot)",message="set roots or trustedRoot"
type KeylessAuthority struct {
	// Identities a signing certificate must name; one matching is enough.
	// +kubebuilder:validation:MinItems=1
	Identities []Identity `json:"identities"`
	// Roots are the certificate authority's PEM root certificates.
	// +optional
	Roots *DataSource `json:"roots,omitempty"`
	// Intermediates are PEM intermediate certificates between the roots
	// and signing certificates, when signatures do not carry their chain.
	// +optional
	Intermediates *DataSource `json:"intermediates,omitempty"`
	// Rekor is the transparency log that signatures made with the roots
	// must be entered in; required with roots unless ignoreTlog is set.
	// +optional
	Rekor *RekorAuthority `json:"rekor,omitempty"`
	// TrustedRoot is a sigstore trusted root (trusted_root.json), naming
	// the certificate authorities and transparency logs together; an
	// alternative to roots, intermediates and rekor.
	// +optional
	TrustedRoot *DataSource `json:"trustedRoot,omitempty"`
	// IgnoreTlog skips the transparency log, for deployments without
	// Rekor. A certificate is then checked at the time of verification,
	// so its signatures fail once it expires (Fulcio's certificates last
	// ten minutes).
	// +optional
	IgnoreTlog bool `json:"ignoreTlog,omitempty"`
}

// Identity is who may sign: the OIDC issuer that authenticated the signer
// (the certificate's issuer extension) and the signer's identity (its
// subject alternative name: an email or a URI). Give each exactly or as a
// regular expression; a regular expression matches the whole value.
//
// +kubebuilder:validation:XValidation:rule="has(self.issuer) != has(self.issuerRegExp)",message="set issuer or issuerRegExp"
// +kubebuilder:validation:XValidation:rule="has(self.subject) != has(self.subjectRegExp)",message="set subject or subjectRegExp"
type Identity struct {
	// Issuer is the OIDC issuer, exactly
	// (https://token.actions.githubusercontent.com).
	// +optional
	Issuer string `json:"issuer,omitempty"`
	// IssuerRegExp matches the whole OIDC issuer.
	// +optional
	IssuerRegExp string `json:"issuerRegExp,omitempty"`
	// Subject is the signer's identity, exactly: an email, or a URI such
	// as a CI workflow
	// (https://github.com/corp/app/.github/workflows/release.yml@refs/tags/v1.4.0).
	// +optional
	Subject string `json:"subject,omitempty"`
	// SubjectRegExp matches the whole identity.
	// +optional
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// RekorAuthority is a Rekor transparency log, known by its public key:
// a signature's offline bundle (its log entry and signed entry timestamp)
// is verified with it, with no call to the log.
type RekorAuthority struct {
	// PublicKey is the log's PEM public key (ECDSA).
	PublicKey DataSource `json:"publicKey"`
}

// DataSource is a document given inline or kept in a Secret.
//
// +kubebuilder:validation:XValidation:rule="has(self.data) != has(self.secretRef)",message="set data or secretRef"
type DataSource struct {
	// Data is the document itself.
	// +optional
	Data string `json:"data,omitempty"`
	// SecretRef names a Secret key holding it.
	// +optional
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
}

// Attestation is an in-toto attestation an image must carry: a statement
// about it (a vulnerability scan, a build provenance) of one predicate
// type, signed by the authority, and optionally a Rego policy its
// predicate must pass.
type Attestation struct {
	// Name identifies the attestation in messages.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// PredicateType is the predicate type URI, matched exactly
	// (https://slsa.dev/provenance/v1), or one of cosign's short names:
	// vuln, slsaprovenance (v0.2), slsaprovenance02, slsaprovenance1,
	// spdx, spdxjson, cyclonedx, link, openvex, custom.
	// +kubebuilder:validation:MinLength=1
	PredicateType string `json:"predicateType"`
	// Policy is a Rego module (v1 syntax, any package) defining
	// `deny contains msg if {...}` over input.predicate,
	// input.predicateType, input.subject and input.now (RFC 3339). The
	// attestation passes when deny is empty; its messages say why not.
	// When absent, a verified attestation of the type is enough.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Policy string `json:"policy,omitempty"`
}

// SecretKeyRef is one key of one Secret.
type SecretKeyRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Key       string `json:"key"`
}

// TollgateImagePolicyList is a list of TollgateImagePolicy.
//
// +kubebuilder:object:root=true
type TollgateImagePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TollgateImagePolicy `json:"items"`
}

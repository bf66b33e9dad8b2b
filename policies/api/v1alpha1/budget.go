package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Budget is what a namespace, a team or a cost-center may spend in a
// period. The FinOps scanner tallies spend against it, keeps spend to date
// and the forecast in its status (so a restart loses nothing), alerts the
// team's channel as thresholds are crossed (each once per period), and the
// admission webhook warns about or denies a change that would take the
// forecast over the amount.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=tgb,categories=tollgate
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Scope",type=string,JSONPath=`.status.scope`
// +kubebuilder:printcolumn:name="Period",type=string,JSONPath=`.spec.period`
// +kubebuilder:printcolumn:name="Spend",type=string,JSONPath=`.status.spend`
// +kubebuilder:printcolumn:name="Forecast",type=string,JSONPath=`.status.forecast`
// +kubebuilder:printcolumn:name="Budget",type=string,JSONPath=`.spec.amount`
// +kubebuilder:printcolumn:name="Currency",type=string,JSONPath=`.spec.currency`,priority=1
// +kubebuilder:printcolumn:name="Used",type=string,JSONPath=`.status.utilization`
// +kubebuilder:printcolumn:name="Alerted",type=string,JSONPath=`.status.alertedSummary`
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`,priority=1
// +kubebuilder:printcolumn:name="Scanned",type=date,JSONPath=`.status.lastScanTime`
type Budget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BudgetSpec   `json:"spec"`
	Status BudgetStatus `json:"status,omitempty"`
}

// The Priced condition of a Budget: True when every governed object in
// its scope (a claim for a managed database) is priced, False naming
// those its figures leave out.
const (
	ConditionPriced = "Priced"
	ReasonPriced    = "Priced"
	// ReasonUnpriced: an object's price fields are missing or name a
	// class the catalogue does not list.
	ReasonUnpriced = "Unpriced"
	// ReasonUnlisted: a governed kind could not be listed (RBAC).
	ReasonUnlisted = "Unlisted"
)

// The ClustersReporting condition of a Budget across clusters: True when
// every cluster it names reported its spend to the fleet Prometheus,
// False naming those that did not (an unknown name, or a cluster whose
// Tollgate is down or not scraped): their spend is not counted.
const (
	ConditionClustersReporting = "ClustersReporting"
	ReasonReporting            = "Reporting"
	ReasonNotReporting         = "NotReporting"
	// ReasonFleetUnreachable: the fleet Prometheus did not answer; the
	// figures are the last ones read.
	ReasonFleetUnreachable = "FleetUnreachable"
)

// LabelMirror marks the read-only copy of a Budget across clusters that
// an execution cluster's Tollgate keeps (value: the central cluster's
// name, or "central"). Tollgate updates and deletes only Budgets carrying
// it.
const LabelMirror = "tollgate.dev/mirror-of"

// Budget periods.
const (
	PeriodMonthly = "monthly"
	PeriodWeekly  = "weekly"
)

// Budget actions at admission.
const (
	BudgetActionNone = "none"
	BudgetActionWarn = "warn"
	BudgetActionDeny = "deny"
)

// BudgetSpec says whose spend is counted, over which period, against what
// amount, and who is told.
type BudgetSpec struct {
	// Scope is whose spend counts; empty means the Budget's own namespace.
	// +optional
	Scope BudgetScope `json:"scope,omitempty"`
	// Period is monthly (calendar month, UTC) or weekly (Monday 00:00 UTC).
	// +kubebuilder:validation:Enum=monthly;weekly
	// +kubebuilder:default=monthly
	Period string `json:"period,omitempty"`
	// Amount is the budget for one period, a decimal such as "5000" or
	// "1250.50".
	// +kubebuilder:validation:Pattern=`^[0-9]{1,12}(\.[0-9]{1,4})?$`
	Amount string `json:"amount"`
	// Currency of Amount; it must be the price catalogue's (USD by default).
	// +kubebuilder:validation:Pattern=`^[A-Z]{3}$`
	// +kubebuilder:default=USD
	Currency string `json:"currency,omitempty"`
	// Thresholds are the utilization percentages that alert, each once per
	// period (default 50, 80, 100).
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Thresholds []int32 `json:"thresholds,omitempty"`
	// Channels name the alert routes (from the FinOps config) to notify;
	// empty means the route the scope's namespace names in its
	// tollgate.dev/budget-channel annotation, or the default route.
	// +kubebuilder:validation:MaxItems=10
	// +optional
	Channels []string `json:"channels,omitempty"`
	// Action is what admission does with a change whose added cost would
	// take the forecast over Amount: none, warn or deny.
	// +kubebuilder:validation:Enum=none;warn;deny
	// +kubebuilder:default=warn
	Action string `json:"action,omitempty"`
}

// BudgetScope selects whose spend a Budget counts: one namespace, or the
// pods carrying labels (team, cost-center — the labels the mutating
// webhook copies from their namespace), in every namespace.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.namespace) && has(self.selector))",message="set namespace or selector, not both"
type BudgetScope struct {
	// Namespace counts one namespace's spend (default: the Budget's).
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Selector counts the spend of the pods whose labels match, in any
	// namespace: matchLabels {team: payments}, or {cost-center: CC-1234}.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	// Clusters makes the Budget span clusters: the scope's spend in each
	// cluster named (by its Tollgate's --cluster-name; "*" for every
	// cluster that reports), summed by the central Tollgate from the fleet
	// Prometheus (--fleet-prometheus) and mirrored, read-only, into each
	// execution cluster, whose admission judges by the mirror. Empty: this
	// cluster only.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?)$`
	// +optional
	Clusters []string `json:"clusters,omitempty"`
}

// BudgetStatus is the scanner's tally, persisted so a restart or a new
// leader continues where the last one stopped.
type BudgetStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Scope is the scope in words (namespace shop, team=payments).
	// +optional
	Scope string `json:"scope,omitempty"`
	// PeriodStart and PeriodEnd bound the current period.
	// +optional
	PeriodStart *metav1.Time `json:"periodStart,omitempty"`
	// +optional
	PeriodEnd *metav1.Time `json:"periodEnd,omitempty"`
	// Spend is the spend to date in the period, Forecast the spend at the
	// period's end at the current rate, both decimals in Currency.
	// +optional
	Spend string `json:"spend,omitempty"`
	// +optional
	Forecast string `json:"forecast,omitempty"`
	// HourlyRate is the cost per hour measured by the last scan.
	// +optional
	HourlyRate string `json:"hourlyRate,omitempty"`
	// Utilization is Spend over Amount, as a percentage ("82%").
	// +optional
	Utilization string `json:"utilization,omitempty"`
	// LastScanTime is when spend was last added; the next scan adds the
	// time since at the current rate.
	// +optional
	LastScanTime *metav1.Time `json:"lastScanTime,omitempty"`
	// Alerted are the thresholds already alerted in this period.
	// +optional
	Alerted []BudgetAlert `json:"alerted,omitempty"`
	// AlertedSummary lists them for kubectl ("50%,80%").
	// +optional
	AlertedSummary string `json:"alertedSummary,omitempty"`
	// Stale is true when the last scan could not read usage (Prometheus
	// down or slow): spend was counted from requests only, and no alert
	// fired on the missing data.
	// +optional
	Stale bool `json:"stale,omitempty"`
	// FailedDeliveries counts alert deliveries that kept failing; LastError
	// says the latest problem (a delivery, a price, a scan).
	// +optional
	FailedDeliveries int32 `json:"failedDeliveries,omitempty"`
	// +optional
	LastError string `json:"lastError,omitempty"`
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Clusters is a Budget across clusters' spend per cluster, as the
	// fleet Prometheus last reported it.
	// +kubebuilder:validation:MaxItems=256
	// +optional
	Clusters []BudgetClusterSpend `json:"clusters,omitempty"`
	// SpendAsOf is, for a Budget across clusters, the oldest of the
	// clusters' scans its figures add up: what admission allowed after it
	// is not in them yet, and each cluster's admission counts it itself.
	// +optional
	SpendAsOf *metav1.Time `json:"spendAsOf,omitempty"`
	// Mirror is set on the read-only copy of a Budget across clusters in
	// an execution cluster: where it was copied from and when.
	// +optional
	Mirror *BudgetMirror `json:"mirror,omitempty"`
}

// BudgetClusterSpend is one cluster's part of a Budget across clusters.
type BudgetClusterSpend struct {
	// Name is the cluster's (its Tollgate's --cluster-name).
	Name string `json:"name"`
	// HourlyRate is what the scope runs at in the cluster, per hour;
	// CommittedRate what is admitted there and not yet running.
	HourlyRate    string `json:"hourlyRate"`
	CommittedRate string `json:"committedRate,omitempty"`
	// ScannedAt is when the cluster's Tollgate measured it.
	// +optional
	ScannedAt *metav1.Time `json:"scannedAt,omitempty"`
}

// BudgetMirror says where a mirrored Budget's verdict comes from.
type BudgetMirror struct {
	// Cluster is the central cluster's name, Budget the original's
	// namespace/name there.
	Cluster string `json:"cluster,omitempty"`
	Budget  string `json:"budget"`
	// Time is when the verdict was last copied from the central cluster.
	Time metav1.Time `json:"time"`
}

// BudgetAlert is one threshold alerted in a period.
type BudgetAlert struct {
	Threshold int32 `json:"threshold"`
	// At is when the threshold was crossed; Delivered whether every
	// channel took the alert (false: it is retried on the next scans).
	At        metav1.Time `json:"at"`
	Delivered bool        `json:"delivered"`
	// Channels are the routes it went to.
	// +optional
	Channels []string `json:"channels,omitempty"`
}

// BudgetList is a list of Budget.
//
// +kubebuilder:object:root=true
type BudgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Budget `json:"items"`
}

// Package finops prices what Kubernetes workloads reserve: a price catalogue
// in OpenCost's custom-pricing shape (Prices), a cost model that tallies the
// spend of a cluster's running pods and volumes by namespace, team,
// cost-center and label (Model.Tally, for the FinOps scanner), and monthly
// estimates of workload manifests and of the cost an update adds
// (Estimator, for `tollgate cost estimate`, `tollgate check --cost` and
// budget-aware admission).
//
// A pod is charged what it reserves: its effective requests, computed the
// way the scheduler reserves them (policies.PodRequests), or what it uses
// when that is more and usage is known. Costs are hourly; a month is
// HoursPerMonth hours. Everything here is pure computation: no I/O, no
// clock, no Kubernetes client.
package finops

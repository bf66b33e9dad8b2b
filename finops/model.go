package finops

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/tollgate-dev/tollgate/policies"
)

// Default label keys the model groups by; the mutating webhook copies them
// from each Namespace onto its pods.
const (
	DefaultTeamLabel       = "team"
	DefaultCostCenterLabel = "cost-center"
)

// DefaultGPUResources are the extended resources charged at the GPU price.
func DefaultGPUResources() []string {
	return []string{"nvidia.com/gpu", "amd.com/gpu"}
}

// Spend is a cost split by resource, in the catalogue's currency. Total is
// the sum of the others.
type Spend struct {
	CPU     float64 `json:"cpu"`
	RAM     float64 `json:"ram"`
	GPU     float64 `json:"gpu"`
	Storage float64 `json:"storage"`
	// Cloud is what the platform's cloud resources cost (a claim's
	// database instance and its storage), priced by their classes.
	Cloud float64 `json:"cloud,omitempty"`
	Total float64 `json:"total"`
}

// Add returns s plus o, resource by resource.
func (s Spend) Add(o Spend) Spend {
	return Spend{s.CPU + o.CPU, s.RAM + o.RAM, s.GPU + o.GPU, s.Storage + o.Storage, s.Cloud + o.Cloud, s.Total + o.Total}
}

// Sub returns s minus o, resource by resource: what a change adds.
func (s Spend) Sub(o Spend) Spend {
	return Spend{s.CPU - o.CPU, s.RAM - o.RAM, s.GPU - o.GPU, s.Storage - o.Storage, s.Cloud - o.Cloud, s.Total - o.Total}
}

// Scale returns s times f, such as an hourly spend times HoursPerMonth.
func (s Spend) Scale(f float64) Spend {
	return Spend{s.CPU * f, s.RAM * f, s.GPU * f, s.Storage * f, s.Cloud * f, s.Total * f}
}

// spend builds a Spend with its total.
func spend(cpu, ram, gpu, storage float64) Spend {
	return Spend{cpu, ram, gpu, storage, 0, cpu + ram + gpu + storage}
}

// ModelOptions configure a Model. The zero value prices with OpenCost's
// defaults and groups by the default team and cost-center labels.
type ModelOptions struct {
	// Prices is the catalogue; nil means DefaultPrices.
	Prices *Prices
	// TeamLabel and CostCenterLabel are the label keys read for the team
	// and cost-center groups, from the namespace, else from the pod (see
	// LabelOfRecord).
	// Empty means DefaultTeamLabel and DefaultCostCenterLabel.
	TeamLabel       string
	CostCenterLabel string
	// Labels are more label keys to group by, read the same way.
	Labels []string
	// TopWorkloads is how many of the most expensive workloads a Tally
	// lists; zero lists none and keeps no per-workload state.
	TopWorkloads int
	// GPUResources are the resource names charged at the GPU price; nil
	// means DefaultGPUResources.
	GPUResources []string
	// GovernedKinds are the config's governed kinds: the objects of
	// Cluster.Governed whose kind has price lines are charged by them, at
	// the catalogue's cloud classes (see Prices.CloudCharges).
	GovernedKinds []policies.GovernedKind
}

// Validate reports options that cannot work.
func (o ModelOptions) Validate() error {
	if o.Prices != nil {
		if err := o.Prices.Validate(); err != nil {
			return err
		}
	}
	if o.TopWorkloads < 0 {
		return fmt.Errorf("cost model: TopWorkloads must not be negative, got %d", o.TopWorkloads)
	}
	for i, l := range o.Labels {
		if l == "" {
			return fmt.Errorf("cost model: Labels[%d] is empty", i)
		}
	}
	return nil
}

// Model prices a cluster's running pods, claimed volumes and governed
// cloud resources and adds them up. Build it once with NewModel; Tally may
// then run concurrently.
type Model struct {
	prices     *Prices
	team       string
	costCenter string
	labels     []string
	top        int
	gpus       []corev1.ResourceName
	governed   []policies.GovernedKind
}

// NewModel validates the options and builds a Model.
func NewModel(o ModelOptions) (*Model, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m := &Model{
		prices:     cmp.Or(o.Prices, DefaultPrices()),
		team:       cmp.Or(o.TeamLabel, DefaultTeamLabel),
		costCenter: cmp.Or(o.CostCenterLabel, DefaultCostCenterLabel),
		labels:     slices.Clone(o.Labels),
		top:        o.TopWorkloads,
		governed:   o.GovernedKinds,
	}
	gpus := o.GPUResources
	if gpus == nil {
		gpus = DefaultGPUResources()
	}
	for _, g := range gpus {
		m.gpus = append(m.gpus, corev1.ResourceName(g))
	}
	return m, nil
}

// WithGovernedKinds is a copy of the Model that prices these governed
// kinds, such as those of the config loaded now (the config is reloaded
// while the Model lives).
func (m *Model) WithGovernedKinds(kinds []policies.GovernedKind) *Model {
	c := *m
	c.governed = kinds
	return &c
}

// ContainerKey names one container of one pod, for usage figures.
type ContainerKey struct {
	Namespace, Pod, Container string
}

// Usage is what a container was measured to use, such as an average over
// the billing window from Prometheus.
type Usage struct {
	// CPU is in cores.
	CPU float64
	// Memory is in bytes.
	Memory float64
}

// Cluster is what the scanner lists: the objects a Tally prices.
type Cluster struct {
	// Pods are priced when Running; Pending, Succeeded, Failed and
	// Unknown pods reserve nothing that is billed to them.
	Pods []corev1.Pod
	// Nodes give each pod its prices (overrides by label, spot); a pod on
	// a node not listed is priced with the top-level on-demand rates.
	Nodes []corev1.Node
	// PersistentVolumeClaims are charged by claimed size: Bound claims by
	// status.capacity (else their request), claims with no phase (objects
	// not read from a cluster) by spec.resources.requests.storage; Pending
	// and Lost claims have no volume and are not charged. A claim is
	// charged once, to the first running pod that mounts it, else to its
	// namespace with its own labels.
	PersistentVolumeClaims []corev1.PersistentVolumeClaim
	// Namespaces give team, cost-center and label values to their pods
	// and claims: a value the namespace sets wins over the object's own
	// (see LabelOfRecord); every listed namespace appears in
	// Tally.Namespaces.
	Namespaces []corev1.Namespace
	// Jobs, when given, resolve each Job to the CronJob that owns it. Left
	// nil, a Job named "<name>-<8 or more digits>" is taken to be one of
	// CronJob <name>'s, as the CronJob controller names them.
	Jobs []batchv1.Job
	// Usage is measured usage by container. A container is charged the
	// larger of its request and its usage; with no usage (nil, or no entry
	// for the container) it is charged its request alone.
	Usage map[ContainerKey]Usage
	// NodePrices are hourly prices observed per node name, such as
	// OpenCost's node_cpu_hourly_cost and node_ram_hourly_cost metrics.
	// They win over the catalogue; a zero field falls back to it. Their
	// Storage is not used: volumes are priced cluster-wide.
	NodePrices map[string]Rates
	// Governed are objects of the config's governed kinds (Crossplane
	// claims and composite resources for databases, buckets, ...). Those
	// whose kind has price lines (ModelOptions.GovernedKinds) are charged
	// from their fields for as long as they exist, at the monthly price
	// over HoursPerMonth an hour, to their namespace with its team and
	// cost-center as for claims (see LabelOfRecord); a cluster-scoped one
	// (a composite resource) to no namespace, by its own labels. One that
	// cannot be priced is in Tally.Unpriced, never charged $0 in silence.
	Governed []unstructured.Unstructured
}

// Group is the spend of one namespace, team, cost-center or label value.
type Group struct {
	// Name is the namespace, or the label value; "" gathers the pods and
	// volumes that carry no value for the label.
	Name string `json:"name"`
	// Pods is the number of running pods charged.
	Pods int `json:"pods"`
	// Volumes is the number of claims charged.
	Volumes int `json:"volumes"`
	// Hourly is the spend per hour at the time of the listing.
	Hourly Spend `json:"hourly"`
	// Monthly is Hourly × HoursPerMonth.
	Monthly Spend `json:"monthly"`
}

// Workload is the spend of one workload: a Deployment, StatefulSet,
// DaemonSet, CronJob, Job, ... through its pods, a bare pod, a claim no
// running pod mounts (kind PersistentVolumeClaim), or a governed cloud
// resource (its own kind, such as PostgreSQLInstance; Namespace is empty
// for a cluster-scoped one).
type Workload struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Pods      int    `json:"pods"`
	Hourly    Spend  `json:"hourly"`
	Monthly   Spend  `json:"monthly"`
}

// Tally is a cluster's spend, grouped. Groups are sorted by name; Top by
// monthly cost, most expensive first.
type Tally struct {
	// Currency is the catalogue's currency.
	Currency string `json:"currency"`
	// Pods is the number of pods listed; Charged those that ran.
	Pods    int `json:"pods"`
	Charged int `json:"charged"`
	// Volumes is the number of claims charged.
	Volumes int `json:"volumes"`
	// CloudResources is the number of governed objects charged.
	CloudResources int `json:"cloudResources,omitempty"`
	// Unpriced are the governed objects that could not be priced, by
	// namespace and name: each is missing from the figures, and says why.
	Unpriced []Unpriced `json:"unpriced,omitempty"`
	// Hourly and Monthly are the whole cluster's spend.
	Hourly  Spend `json:"hourly"`
	Monthly Spend `json:"monthly"`
	// Namespaces, Teams and CostCenters are the spend per group.
	Namespaces  []Group `json:"namespaces"`
	Teams       []Group `json:"teams"`
	CostCenters []Group `json:"costCenters"`
	// Labels is the spend per value of each ModelOptions.Labels key.
	Labels map[string][]Group `json:"labels,omitempty"`
	// Top is the ModelOptions.TopWorkloads most expensive workloads.
	Top []Workload `json:"top,omitempty"`
}

// Unpriced is an object of a governed kind that could not be priced: a
// field its price lines name is missing or not a number, or names a class
// the catalogue does not list.
type Unpriced struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Field is the path of the field at fault (spec.parameters.instanceClass).
	Field string `json:"field,omitempty"`
	// Reason is the whole error, field included.
	Reason string `json:"reason"`
}

// String names the object and says why it is not priced.
func (u Unpriced) String() string {
	name := u.Name
	if u.Namespace != "" {
		name = u.Namespace + "/" + name
	}
	return u.Kind + " " + name + ": " + u.Reason
}

// Namespace returns the spend of one namespace.
func (t *Tally) Namespace(name string) (Group, bool) {
	return findGroup(t.Namespaces, name)
}

// Team returns the spend of one team.
func (t *Tally) Team(name string) (Group, bool) {
	return findGroup(t.Teams, name)
}

// CostCenter returns the spend of one cost-center.
func (t *Tally) CostCenter(name string) (Group, bool) {
	return findGroup(t.CostCenters, name)
}

func findGroup(groups []Group, name string) (Group, bool) {
	i, ok := slices.BinarySearchFunc(groups, name, func(g Group, n string) int { return strings.Compare(g.Name, n) })
	if !ok {
		return Group{}, false
	}
	return groups[i], true
}

// Tally prices every running pod and charged claim of c and adds them up.
// It keeps one accumulator per group and, when TopWorkloads is set, per
// workload; never one per pod.
func (m *Model) Tally(c Cluster) *Tally {
	t := &tally{
		m:          m,
		namespaces: newGroups(len(c.Namespaces)),
		teams:      newGroups(0),
		costCenter: newGroups(0),
		labels:     make([]groups, len(m.labels)),
		nsLabels:   make(map[string]map[string]string, len(c.Namespaces)),
	}
	for i := range t.labels {
		t.labels[i] = newGroups(0)
	}
	if m.top > 0 {
		t.workloads = map[workloadKey]int{}
	}
	for i := range c.Namespaces {
		ns := &c.Namespaces[i]
		t.nsLabels[ns.Name] = ns.Labels
		t.namespaces.at(ns.Name)
	}
	base := m.prices.Sheet.Rates(false)
	t.storage = m.prices.Sheet.Storage
	nodeRates := make(map[string]Rates, len(c.Nodes))
	for i := range c.Nodes {
		n := &c.Nodes[i]
		nodeRates[n.Name] = m.prices.ForNode(n.Labels)
	}
	for name, observed := range c.NodePrices {
		r, ok := nodeRates[name]
		if !ok {
			r = base
		}
		nodeRates[name] = observed.orElse(r)
	}
	claims := indexClaims(c.PersistentVolumeClaims)
	t.jobs = cronJobsOf(c.Jobs)

	for i := range c.Pods {
		pod := &c.Pods[i]
		t.out.Pods++
		if pod.Status.Phase != corev1.PodRunning {
			continue
		}
		t.out.Charged++
		rates, ok := nodeRates[pod.Spec.NodeName]
		if !ok {
			rates = base
		}
		use := m.reserved(pod, c.Usage)
		var storage float64
		volumes := 0
		for j := range pod.Spec.Volumes {
			if k, ok := claims.mounted(pod, &pod.Spec.Volumes[j]); ok {
				storage += claims.size[k]
				volumes++
			}
		}
		s := spend(use.cpu*rates.CPU, use.mem/gib*rates.RAM, use.gpu*rates.GPU, storage/gib*t.storage)
		kind, name := t.workloadOf(pod)
		t.add(pod.Namespace, pod.Labels, kind, name, 1, volumes, s)
	}
	// Claims no running pod mounts still hold their disks.
	for k := range c.PersistentVolumeClaims {
		if claims.charged[k] || claims.size[k] == 0 {
			continue
		}
		pvc := &c.PersistentVolumeClaims[k]
		claims.charged[k] = true
		s := spend(0, 0, 0, claims.size[k]/gib*t.storage)
		t.add(pvc.Namespace, pvc.Labels, "PersistentVolumeClaim", pvc.Name, 0, 1, s)
	}
	for i := range c.Governed {
		t.cloud(&c.Governed[i])
	}
	return t.result()
}

// cloud charges one governed object by its kind's price lines, or records
// it as unpriced.
func (t *tally) cloud(obj *unstructured.Unstructured) {
	gvk := obj.GroupVersionKind()
	g := governedKind(t.m.governed, gvk.Group, gvk.Kind)
	if g == nil || len(g.Pricing) == 0 {
		return // costs nothing by itself
	}
	charges, err := t.m.prices.CloudCharges(obj.Object, g)
	var monthly float64
	for _, c := range charges {
		monthly += c.Monthly
	}
	if err == nil && (math.IsInf(monthly, 0) || math.IsNaN(monthly)) {
		err = errors.New("the cost overflows: check the prices and the quantities")
	}
	if err != nil {
		u := Unpriced{Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName(), Reason: err.Error()}
		var fe *FieldError
		if errors.As(err, &fe) {
			u.Field = policies.FormatPath(fe.Path)
		}
		t.out.Unpriced = append(t.out.Unpriced, u)
		return
	}
	hourly := monthly / HoursPerMonth
	t.out.CloudResources++
	t.add(obj.GetNamespace(), obj.GetLabels(), gvk.Kind, obj.GetName(), 0, 0, Spend{Cloud: hourly, Total: hourly})
}

// podUse is what a pod is charged for: cores, bytes of memory, GPUs.
type podUse struct{ cpu, mem, gpu float64 }

func (a podUse) plus(b podUse) podUse { return podUse{a.cpu + b.cpu, a.mem + b.mem, a.gpu + b.gpu} }
func (a podUse) atLeast(b podUse) podUse {
	return podUse{max(a.cpu, b.cpu), max(a.mem, b.mem), max(a.gpu, b.gpu)}
}

// reserved is what a pod is charged for. Without usage it is what the
// scheduler reserves, by the rules of policies.PodRequests: containers and
// sidecars add up, an init container's peak (with the sidecars started
// before it) wins when larger, pod-level requests win for the resources
// they name, a missing request is the limit. With usage, each running
// container (sidecars included) counts the larger of its request and its
// usage, and pod-level requests the larger of them and the pod's usage.
func (m *Model) reserved(pod *corev1.Pod, usage map[ContainerKey]Usage) podUse {
	var sum, used, sidecars, initPeak podUse
	running := func(c *corev1.Container) podUse {
		req := m.requests(&c.Resources)
		if usage == nil {
			return req
		}
		u, ok := usage[ContainerKey{pod.Namespace, pod.Name, c.Name}]
		if !ok {
			return req
		}
		used = used.plus(podUse{cpu: u.CPU, mem: u.Memory})
		return req.atLeast(podUse{cpu: u.CPU, mem: u.Memory})
	}
	spec := &pod.Spec
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars = sidecars.plus(m.requests(&c.Resources))
			initPeak = initPeak.atLeast(sidecars)
			sum = sum.plus(running(c))
			continue
		}
		initPeak = initPeak.atLeast(m.requests(&c.Resources).plus(sidecars))
	}
	for i := range spec.Containers {
		sum = sum.plus(running(&spec.Containers[i]))
	}
	out := sum.atLeast(initPeak)
	if spec.Resources != nil {
		if q, ok := spec.Resources.Requests[corev1.ResourceCPU]; ok {
			out.cpu = max(q.AsApproximateFloat64(), used.cpu)
		}
		if q, ok := spec.Resources.Requests[corev1.ResourceMemory]; ok {
			out.mem = max(q.AsApproximateFloat64(), used.mem)
		}
	}
	return out
}

// requests is a container's requests, each defaulting to its limit.
func (m *Model) requests(r *corev1.ResourceRequirements) podUse {
	u := podUse{cpu: request(r, corev1.ResourceCPU), mem: request(r, corev1.ResourceMemory)}
	for _, g := range m.gpus {
		u.gpu += request(r, g)
	}
	return u
}

func request(r *corev1.ResourceRequirements, name corev1.ResourceName) float64 {
	if q, ok := r.Requests[name]; ok {
		return q.AsApproximateFloat64()
	}
	if q, ok := r.Limits[name]; ok {
		return q.AsApproximateFloat64()
	}
	return 0
}

// nsName identifies a namespaced object without building a string.
type nsName struct{ namespace, name string }

// claimIndex is the claims by namespace and name, with their charged size
// and whether they have been charged yet.
type claimIndex struct {
	byName  map[nsName]int
	size    []float64 // bytes; 0 when the claim is not charged
	charged []bool
}

func indexClaims(pvcs []corev1.PersistentVolumeClaim) *claimIndex {
	ci := &claimIndex{
		byName:  make(map[nsName]int, len(pvcs)),
		size:    make([]float64, len(pvcs)),
		charged: make([]bool, len(pvcs)),
	}
	for i := range pvcs {
		pvc := &pvcs[i]
		ci.byName[nsName{pvc.Namespace, pvc.Name}] = i
		ci.size[i] = claimedBytes(pvc)
	}
	return ci
}

// claimedBytes is the size a claim is charged for; see
// Cluster.PersistentVolumeClaims.
func claimedBytes(pvc *corev1.PersistentVolumeClaim) float64 {
	requested := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	switch pvc.Status.Phase {
	case corev1.ClaimBound:
		if q, ok := pvc.Status.Capacity[corev1.ResourceStorage]; ok {
			return max(q.AsApproximateFloat64(), 0)
		}
		return max(requested.AsApproximateFloat64(), 0)
	case "":
		return max(requested.AsApproximateFloat64(), 0)
	}
	return 0
}

// mounted returns the claim a pod volume mounts, if it is charged to this
// pod: it exists, has a size, and no pod was charged for it before.
func (ci *claimIndex) mounted(pod *corev1.Pod, v *corev1.Volume) (int, bool) {
	var claim string
	switch {
	case v.PersistentVolumeClaim != nil:
		claim = v.PersistentVolumeClaim.ClaimName
	case v.Ephemeral != nil:
		claim = pod.Name + "-" + v.Name // a generic ephemeral volume's claim
	default:
		return 0, false
	}
	k, ok := ci.byName[nsName{pod.Namespace, claim}]
	if !ok || ci.charged[k] || ci.size[k] == 0 {
		return 0, false
	}
	ci.charged[k] = true
	return k, true
}

// cronJobsOf maps each Job a CronJob owns to the CronJob's name; nil when
// no Jobs were listed, which selects the naming rule instead.
func cronJobsOf(jobs []batchv1.Job) map[nsName]string {
	if jobs == nil {
		return nil
	}
	out := make(map[nsName]string, len(jobs))
	for i := range jobs {
		j := &jobs[i]
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.Kind == "CronJob" {
			out[nsName{j.Namespace, j.Name}] = ref.Name
		}
	}
	return out
}

// workloadKey identifies a workload.
type workloadKey struct{ kind, namespace, name string }

// groupAcc accumulates one group.
type groupAcc struct {
	name    string
	pods    int
	volumes int
	hourly  Spend
}

// groups is one grouping's accumulators, indexed by name.
type groups struct {
	index map[string]int
	accs  []groupAcc
}

func newGroups(n int) groups {
	return groups{index: make(map[string]int, n), accs: make([]groupAcc, 0, n)}
}

// at returns the accumulator of name, adding it when new.
func (g *groups) at(name string) *groupAcc {
	i, ok := g.index[name]
	if !ok {
		i = len(g.accs)
		g.index[name] = i
		g.accs = append(g.accs, groupAcc{name: name})
	}
	return &g.accs[i]
}

func (g *groups) add(name string, pods, volumes int, s Spend) {
	a := g.at(name)
	a.pods += pods
	a.volumes += volumes
	a.hourly = a.hourly.Add(s)
}

func (g *groups) result() []Group {
	out := make([]Group, len(g.accs))
	for i, a := range g.accs {
		out[i] = Group{Name: a.name, Pods: a.pods, Volumes: a.volumes, Hourly: a.hourly, Monthly: a.hourly.Scale(HoursPerMonth)}
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// tally is the state of one Model.Tally.
type tally struct {
	m          *Model
	out        Tally
	storage    float64 // per GiB-hour
	namespaces groups
	teams      groups
	costCenter groups
	labels     []groups
	nsLabels   map[string]map[string]string
	jobs       map[nsName]string
	workloads  map[workloadKey]int
	wacc       []Workload
}

// add charges s to every group the object belongs to.
func (t *tally) add(namespace string, labels map[string]string, kind, name string, pods, volumes int, s Spend) {
	t.out.Volumes += volumes
	t.out.Hourly = t.out.Hourly.Add(s)
	nsLabels := t.nsLabels[namespace]
	if namespace != "" { // a cluster-scoped object is charged to no namespace
		t.namespaces.add(namespace, pods, volumes, s)
	}
	t.teams.add(LabelOfRecord(labels, nsLabels, t.m.team), pods, volumes, s)
	t.costCenter.add(LabelOfRecord(labels, nsLabels, t.m.costCenter), pods, volumes, s)
	for i, key := range t.m.labels {
		t.labels[i].add(LabelOfRecord(labels, nsLabels, key), pods, volumes, s)
	}
	if t.workloads == nil {
		return
	}
	k := workloadKey{kind, namespace, name}
	i, ok := t.workloads[k]
	if !ok {
		i = len(t.wacc)
		t.workloads[k] = i
		t.wacc = append(t.wacc, Workload{Kind: kind, Namespace: namespace, Name: name})
	}
	w := &t.wacc[i]
	w.Pods += pods
	w.Hourly = w.Hourly.Add(s)
}

// LabelOfRecord is the value a pod or claim is charged under for one label
// key: its namespace's when the namespace sets one, else the object's own.
// Namespaces are the platform's, workloads their developers': a workload
// that carries another team's cost-center, or a team label outside its
// Budget's selector, must not move its spend there. The cost model, the
// Budget scanner and the budget gate all read labels through it (Tollgate's
// ownership-of-record policy reports the mismatch itself as a finding).
func LabelOfRecord(labels, nsLabels map[string]string, key string) string {
	if v := nsLabels[key]; v != "" {
		return v
	}
	return labels[key]
}

// LabelsOfRecord is every label of an object as it is charged: the
// object's labels, with its namespace's in place of them for each key the
// namespace sets (see LabelOfRecord).
func LabelsOfRecord(labels, nsLabels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+len(nsLabels))
	for k, v := range labels {
		out[k] = v
	}
	for k, v := range nsLabels {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// workloadOf names the workload a pod belongs to: its controller, with a
// Deployment's ReplicaSet and a CronJob's Job resolved to their owner.
func (t *tally) workloadOf(pod *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil {
		return "Pod", pod.Name
	}
	switch ref.Kind {
	case "ReplicaSet":
		// A Deployment names its ReplicaSets "<deployment>-<pod-template-hash>".
		if d, ok := trimSuffix(ref.Name, pod.Labels["pod-template-hash"]); ok {
			return "Deployment", d
		}
	case "Job":
		if t.jobs != nil {
			if cj, ok := t.jobs[nsName{pod.Namespace, ref.Name}]; ok {
				return "CronJob", cj
			}
		} else if cj, ok := cronJobByName(ref.Name); ok {
			return "CronJob", cj
		}
	}
	return ref.Kind, ref.Name
}

// trimSuffix returns name without "-"+suffix, if it ends so and keeps a
// name; it allocates nothing.
func trimSuffix(name, suffix string) (string, bool) {
	n := len(name) - len(suffix) - 1
	if suffix == "" || n < 1 || name[n] != '-' || name[n+1:] != suffix {
		return "", false
	}
	return name[:n], true
}

// cronJobByName reads the CronJob from a Job name "<cronjob>-<minutes>",
// the scheduled time in minutes since the epoch (8 digits since 1973).
func cronJobByName(job string) (string, bool) {
	i := strings.LastIndexByte(job, '-')
	if i < 1 || len(job)-i-1 < 8 {
		return "", false
	}
	for _, r := range job[i+1:] {
		if r < '0' || r > '9' {
			return "", false
		}
	}
	return job[:i], true
}

func (t *tally) result() *Tally {
	out := t.out
	out.Currency = t.m.prices.Currency
	out.Monthly = out.Hourly.Scale(HoursPerMonth)
	out.Namespaces = t.namespaces.result()
	out.Teams = t.teams.result()
	out.CostCenters = t.costCenter.result()
	slices.SortFunc(out.Unpriced, func(a, b Unpriced) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name), strings.Compare(a.Kind, b.Kind))
	})
	if len(t.labels) > 0 {
		out.Labels = make(map[string][]Group, len(t.labels))
		for i, key := range t.m.labels {
			out.Labels[key] = t.labels[i].result()
		}
	}
	if t.workloads != nil {
		out.Top = topWorkloads(t.wacc, t.m.top)
	}
	return &out
}

// topWorkloads returns the n most expensive workloads, most expensive
// first, ties by kind, namespace and name. It keeps a min-heap of n.
func topWorkloads(all []Workload, n int) []Workload {
	h := &workloadHeap{}
	for i := range all {
		switch {
		case h.Len() < n:
			heap.Push(h, &all[i])
		case cheaper(h.items[0], &all[i]):
			h.items[0] = &all[i]
			heap.Fix(h, 0)
		}
	}
	out := make([]Workload, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		w := heap.Pop(h).(*Workload)
		w.Monthly = w.Hourly.Scale(HoursPerMonth)
		out[i] = *w
	}
	return out
}

// cheaper orders workloads for the top list: a is cheaper than b, or as
// dear and after it by kind, namespace and name.
func cheaper(a, b *Workload) bool {
	if a.Hourly.Total != b.Hourly.Total {
		return a.Hourly.Total < b.Hourly.Total
	}
	return cmp.Or(
		strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Namespace, b.Namespace),
		strings.Compare(a.Name, b.Name),
	) > 0
}

// workloadHeap is a min-heap by cheaper: the root is the first to evict.
type workloadHeap struct{ items []*Workload }

func (h *workloadHeap) Len() int           { return len(h.items) }
func (h *workloadHeap) Less(i, j int) bool { return cheaper(h.items[i], h.items[j]) }
func (h *workloadHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *workloadHeap) Push(x any)         { h.items = append(h.items, x.(*Workload)) }
func (h *workloadHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}

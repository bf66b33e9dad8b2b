package budget

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// Controllers are the workloads whose desired replicas the forecast
// counts before their pods exist.
type Controllers struct {
	Deployments            []appsv1.Deployment
	ReplicaSets            []appsv1.ReplicaSet
	StatefulSets           []appsv1.StatefulSet
	ReplicationControllers []corev1.ReplicationController
}

// ListControllers reads the workloads that create pods by replica count,
// in pages of 500.
func ListControllers(ctx context.Context, r client.Reader) (Controllers, error) {
	var w Controllers
	var err error
	if w.Deployments, err = listAll[appsv1.Deployment, *appsv1.DeploymentList](ctx, r, &appsv1.DeploymentList{}); err != nil {
		return w, err
	}
	if w.ReplicaSets, err = listAll[appsv1.ReplicaSet, *appsv1.ReplicaSetList](ctx, r, &appsv1.ReplicaSetList{}); err != nil {
		return w, err
	}
	if w.StatefulSets, err = listAll[appsv1.StatefulSet, *appsv1.StatefulSetList](ctx, r, &appsv1.StatefulSetList{}); err != nil {
		return w, err
	}
	if w.ReplicationControllers, err = listAll[corev1.ReplicationController, *corev1.ReplicationControllerList](ctx, r, &corev1.ReplicationControllerList{}); err != nil {
		return w, err
	}
	return w, nil
}

// Committed is what is admitted but not running yet, which the forecast
// counts as if it ran from now on: pods not yet running (Pending, such as
// unscheduled pods or pods pulling their images), claims not yet bound,
// and the pods controllers are yet to create (a ReplicaSet's, a
// StatefulSet's, a ReplicationController's or an unfinished Job's desired
// pods beyond those that exist; a Deployment's replicas beyond its
// ReplicaSets'). Each pod counts once: running, in the tally; pending,
// here; not yet created, as its controller's missing replica. A governed
// object (a claim for a managed database) is never committed: the tally
// charges it from its fields from the moment it exists.
type Committed struct {
	// index holds the pending pods and claims, priced as running.
	index *clusterIndex
	// missing are the controllers short of pods, each with the hourly
	// cost of one of its pods.
	missing []missingPods
}

type missingPods struct {
	namespace string
	labels    map[string]string
	count     int64
	hourly    float64
}

// Commit works out what is committed from a listed cluster and its
// controllers; the Model prices it.
func Commit(m *finops.Model, c finops.Cluster, w Controllers) *Committed {
	pending := finops.Cluster{Nodes: c.Nodes, Namespaces: c.Namespaces, Jobs: c.Jobs}
	live := map[types.UID]int64{}
	for i := range c.Pods {
		p := &c.Pods[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodRunning:
		case corev1.PodPending, "":
			q := *p
			q.Status.Phase = corev1.PodRunning // priced as the running pod it will be
			pending.Pods = append(pending.Pods, q)
		default:
			continue // Succeeded, Failed, Unknown
		}
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
			live[ref.UID]++
		}
	}
	for i := range c.PersistentVolumeClaims {
		pvc := c.PersistentVolumeClaims[i]
		if pvc.Status.Phase == corev1.ClaimPending && pvc.DeletionTimestamp == nil {
			pvc.Status.Phase = "" // charged by its request, as a claim not yet bound
			pending.PersistentVolumeClaims = append(pending.PersistentVolumeClaims, pvc)
		}
	}
	out := &Committed{index: indexCluster(pending)}
	add := func(obj metav1.Object, desired int64, tmpl *corev1.PodTemplateSpec) {
		n := desired - live[obj.GetUID()]
		if n <= 0 || obj.GetDeletionTimestamp() != nil || tmpl == nil {
			return
		}
		pod := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName(), Labels: tmpl.Labels},
			Spec:       tmpl.Spec, Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
		t := m.Tally(finops.Cluster{Pods: []corev1.Pod{pod}, Nodes: c.Nodes})
		out.missing = append(out.missing, missingPods{namespace: obj.GetNamespace(), labels: tmpl.Labels, count: n, hourly: t.Hourly.Total})
	}
	rsReplicas := map[types.UID]int64{}
	for i := range w.ReplicaSets {
		rs := &w.ReplicaSets[i]
		want := replicas(rs.Spec.Replicas)
		if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
			rsReplicas[ref.UID] += want
		}
		add(rs, want, &rs.Spec.Template)
	}
	for i := range w.Deployments {
		d := &w.Deployments[i]
		// Pods of its ReplicaSets are counted at them; what they do not
		// yet want, here.
		live[d.UID] = rsReplicas[d.UID]
		add(d, replicas(d.Spec.Replicas), &d.Spec.Template)
	}
	for i := range w.StatefulSets {
		s := &w.StatefulSets[i]
		add(s, replicas(s.Spec.Replicas), &s.Spec.Template)
	}
	for i := range w.ReplicationControllers {
		rc := &w.ReplicationControllers[i]
		add(rc, replicas(rc.Spec.Replicas), rc.Spec.Template)
	}
	for i := range c.Jobs {
		j := &c.Jobs[i]
		add(j, jobWants(j), &j.Spec.Template)
	}
	return out
}

// replicas is spec.replicas, 1 when unset as the API server defaults it.
func replicas(p *int32) int64 {
	if p == nil {
		return 1
	}
	return int64(*p)
}

// jobWants is how many pods an unfinished, unsuspended Job runs at once:
// spec.parallelism (default 1), no more than the completions left.
func jobWants(j *batchv1.Job) int64 {
	if j.Spec.Suspend != nil && *j.Spec.Suspend {
		return 0
	}
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return 0
		}
	}
	n := replicas(j.Spec.Parallelism)
	if j.Spec.Completions != nil {
		n = min(n, max(int64(*j.Spec.Completions)-int64(j.Status.Succeeded), 0))
	}
	return n
}

// Hourly is the hourly cost of what is committed in a Budget's scope.
func (c *Committed) Hourly(m *finops.Model, b *v1alpha1.Budget) (float64, error) {
	if c == nil {
		return 0, nil
	}
	sub, _, _, err := c.index.scope(b)
	if err != nil {
		return 0, err
	}
	total := m.Tally(sub).Hourly.Total
	scope, err := ScopeOf(b)
	if err != nil {
		return 0, fmt.Errorf("spec.scope: %w", err)
	}
	for _, p := range c.missing {
		if scope.Covers(p.namespace, c.index.namespaces[p.namespace].Labels, p.labels) {
			total += float64(p.count) * p.hourly
		}
	}
	return total, nil
}

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// controllers are the kube-controller-manager controllers a cluster runs:
// those that give workloads, namespaces and Services the objects they get
// in a real cluster, and none that need nodes, a cloud, signing keys or
// metrics. The serviceaccount-token controller is left out because it
// needs the service-account signing key, and the API server's
// ServiceAccount admission plugin is off, so Pods need no token.
var controllers = []string{
	// Workloads: Deployment → ReplicaSet → Pod, CronJob → Job → Pod, ...
	"deployment-controller",
	"replicaset-controller",
	"replicationcontroller-controller",
	"statefulset-controller",
	"daemonset-controller",
	"job-controller",
	"cronjob-controller",
	"ttl-after-finished-controller",
	"disruption-controller",
	// Clean-up: owner references, namespace deletion, orphaned Pods, and
	// the protection finalizers the API server puts on every PVC and PV,
	// which would otherwise block their deletion for ever.
	"garbage-collector-controller",
	"namespace-controller",
	"pod-garbage-collector-controller",
	"persistentvolumeclaim-protection-controller",
	"persistentvolume-protection-controller",
	// What every namespace holds in a real cluster: the default
	// ServiceAccount and the kube-root-ca.crt ConfigMap.
	"serviceaccount-controller",
	"root-ca-certificate-publisher-controller",
	// Status that admission and cost policies may read.
	"resourcequota-controller",
	"endpoints-controller",
	"endpointslice-controller",
	"endpointslice-mirroring-controller",
	"clusterrole-aggregation-controller",
	"validatingadmissionpolicy-status-controller",
}

// controllerManagerArgs returns kube-controller-manager's command line.
func controllerManagerArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=" + strings.Join(controllers, ","),
		// One instance: no Lease to acquire, so controllers start at once.
		"--leader-elect=false",
		// No HTTPS endpoint at all, hence no port to clash with parallel
		// clusters; readiness is proven by a probe Deployment instead.
		// The bind address only matters if serving is ever turned on.
		"--secure-port=0",
		"--bind-address=127.0.0.1",
		// Controllers use the admin credentials, not per-controller
		// ServiceAccount tokens, which nothing here would issue.
		"--use-service-account-credentials=false",
		// The defaults (20, 30) slow down namespace deletion and large
		// test fixtures; the API server is local and otherwise idle.
		"--kube-api-qps=100",
		"--kube-api-burst=200",
	}
}

// probeName names the Deployment waitForControllers creates.
const probeName = "tollgate-cluster-probe"

// waitForControllers creates a Deployment with no replicas in kube-system
// and waits until kube-controller-manager gives it a ReplicaSet, which
// proves that it runs, reaches the API server and has synced its caches.
// It then deletes the Deployment; the garbage collector removes the
// ReplicaSet. It fails at once if kcm exits.
func waitForControllers(ctx context.Context, cfg *rest.Config, kcm *proc.Process) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	deployments := cs.AppsV1().Deployments(metav1.NamespaceSystem)
	labels := map[string]string{"app.kubernetes.io/name": probeName}
	zero := int32(0)
	probe, err := deployments.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: probeName, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &zero,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "probe",
					Image: "registry.k8s.io/pause:3.10",
				}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the probe Deployment: %w", err)
	}
	defer func() {
		background := metav1.DeletePropagationBackground
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = deployments.Delete(delCtx, probeName, metav1.DeleteOptions{PropagationPolicy: &background})
	}()

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rss, err := cs.AppsV1().ReplicaSets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{
			LabelSelector: metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: labels}),
		})
		if err == nil {
			for _, rs := range rss.Items {
				if owner := metav1.GetControllerOf(&rs); owner != nil && owner.UID == probe.UID {
					return nil
				}
			}
		}
		select {
		case <-kcm.Done():
			return fmt.Errorf("kube-controller-manager exited: %w", kcm.ExitErr())
		case <-ctx.Done():
			if err == nil {
				err = errors.New("the probe Deployment has no ReplicaSet")
			}
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

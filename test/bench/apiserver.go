package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podCreator creates compliant pods through the API server, one per
// request, named by the request's sequence number.
type podCreator struct {
	kube kubernetes.Interface
	ns   string
	// pod makes the pod; nil means compliantPod.
	pod func(ns, name string) *corev1.Pod
}

// do is a request.
func (p *podCreator) do(ctx context.Context, seq uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name := string(appendSeq([]byte("bench-api-"), seq))
	newPod := p.pod
	if newPod == nil {
		newPod = compliantPod
	}
	_, err := p.kube.CoreV1().Pods(p.ns).Create(ctx, newPod(p.ns, name), metav1.CreateOptions{})
	return err
}

// deletePods deletes every pod in ns and waits until none is left, so that
// a phase does not start on the previous phase's objects. Pods that are not
// scheduled go at once, without a grace period.
func deletePods(ctx context.Context, kube kubernetes.Interface, ns string) error {
	pods := kube.CoreV1().Pods(ns)
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("deleting the pods in %s: %w", ns, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := pods.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return fmt.Errorf("listing the pods in %s: %w", ns, err)
		}
		if len(list.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods in %s still there 2 minutes after deleting them", ns)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitEnforcing waits until the API server calls both webhooks; its view of
// newly created webhook configurations lags a little. The validating one
// is called once a privileged pod is denied, the mutating one once a pod
// without ownership labels comes back with them; both are dry runs.
func waitEnforcing(ctx context.Context, kube kubernetes.Interface, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pods := kube.CoreV1().Pods(ns)
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	var validated, mutated bool
	var last error
	for {
		if !validated {
			_, err := pods.Create(ctx, privilegedPod(ns, "bench-probe-privileged"), dryRun)
			switch {
			case err == nil:
				last = errors.New("a privileged pod was admitted")
			case strings.Contains(err.Error(), "pss-baseline-privileged"):
				validated = true
			default:
				last = err
			}
		}
		if !mutated {
			p := compliantPod(ns, "bench-probe-unlabelled")
			p.Labels = map[string]string{"app": "checkout"}
			got, err := pods.Create(ctx, p, dryRun)
			switch {
			case err != nil:
				last = err
			case got.Labels["team"] == ownershipLabels["team"]:
				mutated = true
			default:
				last = errors.New("a pod without ownership labels was not given them")
			}
		}
		if validated && mutated {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the API server to call the webhooks (validating called: %t, mutating called: %t): %w; last: %w",
				validated, mutated, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

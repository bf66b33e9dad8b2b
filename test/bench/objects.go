package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// ownershipLabels satisfy the ownership policies, on the namespace and on
// every object.
var ownershipLabels = map[string]string{"team": "payments", "owner": "alice", "cost-center": "CC-1234"}

// withLabels returns the ownership labels plus extra.
func withLabels(extra map[string]string) map[string]string {
	l := make(map[string]string, len(ownershipLabels)+len(extra))
	for k, v := range ownershipLabels {
		l[k] = v
	}
	for k, v := range extra {
		l[k] = v
	}
	return l
}

// benchNamespace is a namespace carrying the ownership labels.
func benchNamespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: withLabels(map[string]string{"environment": "prod"})}}
}

// compliantPodSpec is a pod every policy of the library admits: restricted
// Pod Security, requests and memory limits, pinned images. It has an init
// container, an application, a proxy sidecar and a log shipper, with
// probes, environment and volumes, the size of a typical production pod.
func compliantPodSpec() corev1.PodSpec {
	hardened := func() *corev1.SecurityContext {
		return &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		}
	}
	res := func(cpu, mem, limit string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
		}
	}
	return corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr(true),
			RunAsUser:      ptr(int64(10001)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		InitContainers: []corev1.Container{{
			Name: "migrate", Image: "registry.corp.example/shop/migrate:2.4.1",
			Args:            []string{"--database-url=$(DATABASE_URL)", "--timeout=60s"},
			Env:             []corev1.EnvVar{{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-db"}, Key: "url"}}}},
			SecurityContext: hardened(),
			Resources:       res("100m", "64Mi", "128Mi"),
		}},
		Containers: []corev1.Container{{
			Name: "app", Image: "registry.corp.example/shop/checkout:1.8.0",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
			Env: []corev1.EnvVar{
				{Name: "LOG_LEVEL", Value: "info"},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
				{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
			},
			ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("http")}}, PeriodSeconds: 5},
			LivenessProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 10},
			SecurityContext: hardened(),
			Resources:       res("500m", "512Mi", "1Gi"),
			VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}, {Name: "config", MountPath: "/etc/checkout", ReadOnly: true}},
		}, {
			Name: "proxy", Image: "registry.corp.example/platform/envoy:1.31.2",
			Args:            []string{"--config-path", "/etc/envoy/envoy.yaml", "--concurrency", "2"},
			Ports:           []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}},
			ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("https")}}},
			SecurityContext: hardened(),
			Resources:       res("200m", "128Mi", "256Mi"),
			VolumeMounts:    []corev1.VolumeMount{{Name: "config", MountPath: "/etc/envoy", ReadOnly: true}},
		}, {
			Name: "logs", Image: "registry.corp.example/platform/fluent-bit:3.1.9",
			SecurityContext: hardened(),
			Resources:       res("50m", "64Mi", "128Mi"),
			VolumeMounts:    []corev1.VolumeMount{{Name: "tmp", MountPath: "/var/log/app", ReadOnly: true}},
		}},
		Volumes: []corev1.Volume{
			{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout"}}}},
		},
	}
}

// compliantPod is a pod of compliantPodSpec named name in namespace ns.
func compliantPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: withLabels(map[string]string{"app": "checkout"})},
		Spec:       compliantPodSpec(),
	}
}

// compliantDeployment runs compliantPodSpec.
func compliantDeployment(ns, name string) *appsv1.Deployment {
	sel := map[string]string{"app": "checkout"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: withLabels(sel)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: withLabels(sel)},
				Spec:       compliantPodSpec(),
			},
		},
	}
}

// privilegedPod is denied by pss-baseline-privileged. (The API server
// itself rejects privileged with allowPrivilegeEscalation false.)
func privilegedPod(ns, name string) *corev1.Pod {
	p := compliantPod(ns, name)
	sc := p.Spec.Containers[0].SecurityContext
	sc.Privileged, sc.AllowPrivilegeEscalation = ptr(true), nil
	return p
}

// seqMarker stands for the request's sequence number in a body template.
// It is replaced by exactly seqDigits digits.
const (
	seqMarker = "SEQ0SLOT0SEQ"
	seqDigits = 12
)

// Prefixes of the object and request UIDs of the reviews; the sequence
// number completes them.
const (
	objectUIDPrefix  = "00000000-0000-4000-8000-"
	requestUIDPrefix = "10000000-0000-4000-8000-"
)

// appendSeq appends seq as seqDigits zero-padded digits.
func appendSeq(b []byte, seq uint64) []byte {
	var digits [20]byte
	d := strconv.AppendUint(digits[:0], seq%1_000_000_000_000, 10)
	for range seqDigits - len(d) {
		b = append(b, '0')
	}
	return append(b, d...)
}

// requestUID is the AdmissionReview request UID of request seq.
func requestUID(seq uint64) string {
	return string(appendSeq([]byte(requestUIDPrefix), seq))
}

// bodyTemplate is an encoded AdmissionReview whose names and UIDs carry a
// sequence number, so that every request judges a new object while the
// load generator only concatenates bytes.
type bodyTemplate struct {
	parts [][]byte
	size  int
}

func newBodyTemplate(encoded []byte) bodyTemplate {
	parts := bytes.Split(encoded, []byte(seqMarker))
	return bodyTemplate{parts: parts, size: len(encoded) + (len(parts)-1)*(seqDigits-len(seqMarker))}
}

// render returns the body of request seq, in a new slice: the transport may
// still read a body after the response arrived.
func (t bodyTemplate) render(seq uint64) []byte {
	b := make([]byte, 0, t.size)
	for i, p := range t.parts {
		if i > 0 {
			b = appendSeq(b, seq)
		}
		b = append(b, p...)
	}
	return b
}

// reviewTemplates returns the body templates of a Pod and a Deployment
// CREATE in namespace ns. The objects are first created with dryRun=All,
// so that they carry what the API server adds before admission (defaults,
// managedFields), as the reviews it sends do.
func reviewTemplates(ctx context.Context, kube kubernetes.Interface, ns string) ([]bodyTemplate, error) {
	pod, err := kube.CoreV1().Pods(ns).Create(ctx, compliantPod(ns, "bench-template"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("defaulting the benchmark pod (dry run): %w", err)
	}
	pod.APIVersion, pod.Kind = "v1", "Pod"
	dep, err := kube.AppsV1().Deployments(ns).Create(ctx, compliantDeployment(ns, "bench-template"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("defaulting the benchmark deployment (dry run): %w", err)
	}
	dep.APIVersion, dep.Kind = "apps/v1", "Deployment"

	var out []bodyTemplate
	for _, o := range []struct {
		obj interface {
			metav1.Object
			runtime.Object
		}
		kind     schema.GroupVersionKind
		resource string
	}{
		{pod, corev1.SchemeGroupVersion.WithKind("Pod"), "pods"},
		{dep, appsv1.SchemeGroupVersion.WithKind("Deployment"), "deployments"},
	} {
		t, err := reviewTemplate(o.obj, o.kind, o.resource, ns)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// reviewTemplate is the body template of a CREATE AdmissionReview of obj,
// renamed and given a UID that carry the request's sequence number.
func reviewTemplate(obj interface {
	metav1.Object
	runtime.Object
}, kind schema.GroupVersionKind, resource, ns string) (bodyTemplate, error) {
	name := "bench-" + resource + "-" + seqMarker
	obj.SetName(name)
	obj.SetUID(types.UID(objectUIDPrefix + seqMarker))
	raw, err := json.Marshal(obj)
	if err != nil {
		return bodyTemplate{}, fmt.Errorf("encoding the %s: %w", kind.Kind, err)
	}
	gvk := metav1.GroupVersionKind{Group: kind.Group, Version: kind.Version, Kind: kind.Kind}
	gvr := metav1.GroupVersionResource{Group: kind.Group, Version: kind.Version, Resource: resource}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:  types.UID(requestUIDPrefix + seqMarker),
			Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Name: name, Namespace: ns, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{
				Username: "system:serviceaccount:ci:deployer",
				UID:      "5d0c1d1e-7d0a-4b8e-9a53-3a1f0c5b2f10",
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"},
			},
			Object:  runtime.RawExtension{Raw: raw},
			DryRun:  ptr(false),
			Options: runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl-client-side-apply","fieldValidation":"Strict"}`)},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return bodyTemplate{}, fmt.Errorf("encoding the %s review: %w", kind.Kind, err)
	}
	return newBodyTemplate(body), nil
}

func ptr[T any](v T) *T { return &v }

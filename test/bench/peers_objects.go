package main

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pssCheckIDs name the Pod Security Standards checks every engine of the
// comparison enforces: Tollgate's pss-* library policies, and the checks
// of the same names written for Kyverno and Gatekeeper in
// test/bench/peers. (Tollgate's pss-restricted-proc-mount repeats the
// baseline check, so the peers have no copy of it.)
var pssCheckIDs = []string{
	"pss-baseline-apparmor",
	"pss-baseline-capabilities",
	"pss-baseline-host-namespaces",
	"pss-baseline-host-path",
	"pss-baseline-host-ports",
	"pss-baseline-host-probes",
	"pss-baseline-host-process",
	"pss-baseline-privileged",
	"pss-baseline-proc-mount",
	"pss-baseline-seccomp",
	"pss-baseline-selinux",
	"pss-baseline-sysctls",
	"pss-restricted-capabilities",
	"pss-restricted-privilege-escalation",
	"pss-restricted-run-as-non-root",
	"pss-restricted-run-as-user",
	"pss-restricted-seccomp",
	"pss-restricted-volume-types",
}

// peerPod is the comparison's compliant single-container Pod: the
// application container of compliantPodSpec, restricted Pod Security,
// requests and a memory limit, ownership labels.
func peerPod(ns, name string) *corev1.Pod {
	spec := compliantPodSpec()
	spec.InitContainers = nil
	spec.Containers = spec.Containers[:1]
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: withLabels(map[string]string{"app": "checkout"})},
		Spec:       spec,
	}
}

// privilegedPeerPod is peerPod with a privileged container.
func privilegedPeerPod(ns, name string) *corev1.Pod {
	p := peerPod(ns, name)
	sc := p.Spec.Containers[0].SecurityContext
	sc.Privileged, sc.AllowPrivilegeEscalation = ptr(true), nil
	return p
}

// serviceAccountVolume is the projected token volume kube-apiserver's
// ServiceAccount admission plugin adds to every Pod.
const serviceAccountVolume = "kube-api-access-bq7xm"

// asAPIServerSends completes a Pod the API server defaulted (a dry run)
// with what a real cluster's admission plugins add before webhooks see it,
// where the local API server did not: the service account, its projected
// token volume mounted into every container, and DefaultTolerationSeconds'
// tolerations. It returns what it added.
func asAPIServerSends(p *corev1.Pod) (added []string) {
	p.APIVersion, p.Kind = "v1", "Pod"
	if p.Spec.ServiceAccountName == "" {
		p.Spec.ServiceAccountName = "default"
		added = append(added, "serviceAccountName")
	}
	hasToken := false
	for _, v := range p.Spec.Volumes {
		hasToken = hasToken || strings.HasPrefix(v.Name, "kube-api-access-")
	}
	if !hasToken {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: serviceAccountVolume, VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr(int32(0o644)),
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: ptr(int64(3607)), Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{
						LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
						Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
					}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
						Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
					}}}},
				},
			},
		}})
		for i := range p.Spec.Containers {
			p.Spec.Containers[i].VolumeMounts = append(p.Spec.Containers[i].VolumeMounts, corev1.VolumeMount{
				Name: serviceAccountVolume, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
			})
		}
		added = append(added, "projected token volume")
	}
	if len(p.Spec.Tolerations) == 0 {
		for _, key := range []string{"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"} {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{
				Key: key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300)),
			})
		}
		added = append(added, "tolerations")
	}
	return added
}

// violatingPod breaks every check of pssCheckIDs at least once. Only ever
// posted straight to an engine: the API server would refuse some of its
// combinations (a Windows HostProcess container beside Linux options).
func violatingPod(ns string) *corev1.Pod {
	p := peerPod(ns, "bench-violating")
	p.APIVersion, p.Kind = "v1", "Pod"
	p.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
	p.Spec.HostNetwork, p.Spec.HostPID = true, true
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr(false),
		RunAsUser:      ptr(int64(0)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		SELinuxOptions: &corev1.SELinuxOptions{Type: "spc_t", User: "root"},
		Sysctls:        []corev1.Sysctl{{Name: "kernel.msgmax", Value: "65536"}},
		WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptr(true)},
	}
	c := &p.Spec.Containers[0]
	unmasked := corev1.UnmaskedProcMount
	c.SecurityContext = &corev1.SecurityContext{
		Privileged:               ptr(true),
		AllowPrivilegeEscalation: ptr(true),
		Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
		ProcMount:                &unmasked,
		AppArmorProfile:          &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
	}
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: "host", ContainerPort: 8081, HostPort: 8081})
	c.LivenessProbe.HTTPGet.Host = "169.254.169.254"
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{
		HostPath: &corev1.HostPathVolumeSource{Path: "/var/run/docker.sock"},
	}})
	return p
}

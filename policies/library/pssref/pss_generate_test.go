package pssref_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The generated corpus: pods that set, a few at a time, every field the
// Pod Security Standards read, to values on both sides of every control and
// version, in containers, init containers and ephemeral containers, judged
// as Pods and as pod templates. The same generator turns the fuzzer's bytes
// into pods.

// chooser makes the generator's choices: a seeded generator for the corpus,
// the fuzzer's bytes for FuzzPSSDifferential.
type chooser interface {
	// intn returns a number in [0, n), n ≤ 256.
	intn(n int) int
}

// rngChooser chooses with a seeded generator and records each choice as a
// byte, so a generated pod can be replayed as a fuzz input.
type rngChooser struct {
	r      *rand.Rand
	record []byte
}

func (c *rngChooser) intn(n int) int {
	v := c.r.IntN(n)
	c.record = append(c.record, byte(v))
	return v
}

// byteChooser chooses by the fuzzer's bytes; past the end every choice is 0.
type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0]) % n
	c.b = c.b[1:]
	return v
}

func pick[T any](ch chooser, pool []T) T { return pool[ch.intn(len(pool))] }

// absent in a pool means the field is left out.
type absentValue struct{}

var absent any = absentValue{}

func set(m map[string]any, key string, v any) {
	if v == absent {
		delete(m, key)
		return
	}
	m[key] = v
}

// child returns m[key] as an object, replacing whatever else is there.
func child(m map[string]any, key string) map[string]any {
	c, ok := m[key].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[key] = c
	}
	return c
}

// obj is shorthand for a map literal of key/value pairs.
func obj(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

var (
	bools           = []any{true, false, nil, absent}
	uids            = []any{0, 1000, 65532, nil, absent}
	seccompProfiles = []any{
		nil, obj(), obj("type", "RuntimeDefault"), obj("type", "Localhost", "localhostProfile", "profiles/audit.json"),
		obj("type", "Unconfined"), obj("type", ""), obj("type", "runtime/default"), absent,
	}
	appArmorProfiles = []any{
		nil, obj(), obj("type", "RuntimeDefault"), obj("type", "Localhost", "localhostProfile", "k8s-apparmor"),
		obj("type", "Unconfined"), obj("type", ""), absent,
	}
	seLinuxOptions = []any{
		nil, obj(), obj("type", "container_t"), obj("type", "container_init_t"), obj("type", "container_kvm_t"),
		obj("type", "container_engine_t"), obj("type", "spc_t"), obj("type", ""), obj("user", "system_u"),
		obj("role", "system_r"), obj("user", "", "role", ""), obj("level", "s0:c123,c456"), absent,
	}
	procMounts   = []any{"Default", "Unmasked", "", nil, absent}
	capabilities = []any{
		"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
		"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT", "SYS_ADMIN", "NET_RAW", "NET_ADMIN", "SYS_PTRACE",
		"ALL", "CAP_CHOWN", "chown", "",
	}
	drops   = []any{[]any{"ALL"}, []any{"all"}, []any{"NET_RAW"}, []any{"NET_RAW", "ALL"}, []any{}, nil, absent}
	sysctls = []string{
		"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
		"net.ipv4.ip_unprivileged_port_start", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
		"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
		"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.core.somaxconn", "kernel.msgmax", "net.ipv4.ip_forward", "",
	}
	hosts          = []any{"", "169.254.169.254", "localhost", "10.0.0.7", nil, absent}
	appArmorValues = []any{"", "runtime/default", "localhost/k8s-apparmor", "localhost/", "localhost", "unconfined", "docker-default", "RuntimeDefault"}
	seccompValues  = []any{"runtime/default", "docker/default", "localhost/audit.json", "localhost", "unconfined", "", "RuntimeDefault"}
	windowsOptions = []any{obj("hostProcess", true), obj("hostProcess", false), obj(), nil, absent}
	// volumeSources are every inline volume source of the API
	// (corev1.VolumeSource), and a name it does not know.
	volumeSources = func() []string {
		t := reflect.TypeFor[corev1.VolumeSource]()
		var out []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
		return append(out, "fooVolume")
	}()
	containerFields = []string{"initContainers", "containers", "ephemeralContainers"}
)

// generatePod builds one pod from the chooser's choices: a bare, a
// baseline-compliant or a restricted-compliant pod, then up to five changes
// to fields the standard reads.
func generatePod(ch chooser) map[string]any {
	profile := ch.intn(3)
	spec := map[string]any{}
	meta := map[string]any{"name": "generated"}
	pod := map[string]any{"metadata": meta, "spec": spec}
	if profile == 2 {
		spec["securityContext"] = obj("runAsNonRoot", true, "seccompProfile", obj("type", "RuntimeDefault"))
	}
	counts := []int{ch.intn(3), 1 + ch.intn(2), ch.intn(2)}
	if ch.intn(10) == 0 {
		counts[1] = 0
	}
	for i, field := range containerFields {
		var list []any
		for j := range counts[i] {
			c := obj("name", fmt.Sprintf("%s%d", field[:1], j), "image", "registry.k8s.io/pause")
			if profile == 2 {
				c["securityContext"] = obj("allowPrivilegeEscalation", false, "capabilities", obj("drop", []any{"ALL"}))
			}
			list = append(list, c)
		}
		if list != nil {
			spec[field] = list
		}
	}
	for range ch.intn(6) {
		pick(ch, mutators)(ch, pod)
	}
	return pod
}

// container picks one of the pod's containers, or adds one when it has none.
func container(ch chooser, pod map[string]any) map[string]any {
	spec := pod["spec"].(map[string]any)
	var all []map[string]any
	for _, field := range containerFields {
		list, _ := spec[field].([]any)
		for _, c := range list {
			all = append(all, c.(map[string]any))
		}
	}
	if len(all) == 0 {
		c := obj("name", "added", "image", "registry.k8s.io/pause")
		spec["containers"] = []any{c}
		return c
	}
	return pick(ch, all)
}

// Where a field is set: the pod's spec, securityContext or annotations, a
// container or its securityContext.
func podSpec(_ chooser, pod map[string]any) map[string]any { return pod["spec"].(map[string]any) }

func podSC(_ chooser, pod map[string]any) map[string]any {
	return child(pod["spec"].(map[string]any), "securityContext")
}

func annotations(_ chooser, pod map[string]any) map[string]any {
	return child(pod["metadata"].(map[string]any), "annotations")
}

func containerSC(ch chooser, pod map[string]any) map[string]any {
	return child(container(ch, pod), "securityContext")
}

// fields are the plain fields the standard reads: where each is, its name
// (one of several), and the values it takes.
var fields = []struct {
	at    func(chooser, map[string]any) map[string]any
	names []string
	pool  []any
}{
	{podSpec, []string{"hostNetwork", "hostPID", "hostIPC", "hostUsers"}, bools},
	{podSpec, []string{"os"}, []any{obj("name", "windows"), obj("name", "windows"), obj("name", "linux"), nil, obj()}},
	{podSpec, []string{"securityContext"}, []any{nil, obj(), absent}},
	{podSC, []string{"runAsNonRoot"}, bools},
	{podSC, []string{"runAsUser"}, uids},
	{podSC, []string{"seccompProfile"}, seccompProfiles},
	{podSC, []string{"appArmorProfile"}, appArmorProfiles},
	{podSC, []string{"seLinuxOptions"}, seLinuxOptions},
	{podSC, []string{"windowsOptions"}, windowsOptions},
	{annotations, []string{"seccomp.security.alpha.kubernetes.io/pod"}, seccompValues},
	{container, []string{"securityContext"}, []any{nil, obj(), absent}},
	{containerSC, []string{"privileged", "runAsNonRoot", "allowPrivilegeEscalation"}, bools},
	{containerSC, []string{"runAsUser"}, uids},
	{containerSC, []string{"procMount"}, procMounts},
	{containerSC, []string{"seccompProfile"}, seccompProfiles},
	{containerSC, []string{"appArmorProfile"}, appArmorProfiles},
	{containerSC, []string{"seLinuxOptions"}, seLinuxOptions},
	{containerSC, []string{"windowsOptions"}, windowsOptions},
	{containerSC, []string{"capabilities"}, []any{nil, obj(), obj("drop", []any{"ALL"}), absent}},
}

// mutators each change one thing the standard reads: a field of fields, or
// an entry of a list or of the annotations.
var mutators = func() []func(chooser, map[string]any) {
	var out []func(chooser, map[string]any)
	for _, f := range fields {
		out = append(out, func(ch chooser, pod map[string]any) {
			set(f.at(ch, pod), pick(ch, f.names), pick(ch, f.pool))
		})
	}
	return append(out,
		// Per-container annotations, for containers of the pod or not.
		func(ch chooser, pod map[string]any) {
			key := fmt.Sprintf("container.apparmor.security.beta.kubernetes.io/%v", containerName(ch, pod))
			annotations(ch, pod)[key] = pick(ch, appArmorValues)
		},
		func(ch chooser, pod map[string]any) {
			key := fmt.Sprintf("container.seccomp.security.alpha.kubernetes.io/%v", containerName(ch, pod))
			annotations(ch, pod)[key] = pick(ch, seccompValues)
		},
		func(ch chooser, pod map[string]any) {
			var list []any
			for range 1 + ch.intn(3) {
				list = append(list, obj("name", pick(ch, sysctls), "value", "1"))
			}
			if ch.intn(8) == 0 {
				list = append(list, nil)
			}
			podSC(ch, pod)["sysctls"] = list
		},
		func(ch chooser, pod map[string]any) {
			spec := pod["spec"].(map[string]any)
			volumes, _ := spec["volumes"].([]any)
			v := obj("name", fmt.Sprintf("v%d", len(volumes)))
			switch ch.intn(12) {
			case 0: // no source: the API server makes it an emptyDir
			case 1: // a source set to null
				v[pick(ch, volumeSources)] = nil
			case 2: // two sources, which validation forbids
				v[pick(ch, volumeSources)] = obj()
				v[pick(ch, volumeSources)] = obj()
			default:
				v[pick(ch, volumeSources)] = obj()
			}
			spec["volumes"] = append(volumes, v)
		},
		func(ch chooser, pod map[string]any) {
			var add []any
			for range ch.intn(3) {
				add = append(add, pick(ch, capabilities))
			}
			c := child(containerSC(ch, pod), "capabilities")
			set(c, "add", add)
			if ch.intn(2) == 0 {
				set(c, "drop", pick(ch, drops))
			}
		},
		func(ch chooser, pod map[string]any) {
			set(child(containerSC(ch, pod), "capabilities"), "drop", pick(ch, drops))
		},
		func(ch chooser, pod map[string]any) {
			port := obj("containerPort", 8080)
			set(port, "hostPort", pick(ch, []any{0, 8080, nil, absent}))
			c := container(ch, pod)
			ports, _ := c["ports"].([]any)
			c["ports"] = append(ports, port)
		},
		func(ch chooser, pod map[string]any) {
			probe := pick(ch, []string{"livenessProbe", "readinessProbe", "startupProbe"})
			container(ch, pod)[probe] = handler(ch, false)
		},
		func(ch chooser, pod map[string]any) {
			hook := pick(ch, []string{"postStart", "preStop"})
			child(container(ch, pod), "lifecycle")[hook] = handler(ch, true)
		},
	)
}()

func containerName(ch chooser, pod map[string]any) any {
	if ch.intn(5) == 0 {
		return "not-a-container"
	}
	return container(ch, pod)["name"]
}

// handler is a probe's or lifecycle hook's handler, with or without a host.
func handler(ch chooser, lifecycle bool) map[string]any {
	kinds := []string{"httpGet", "tcpSocket", "grpc", "exec"}
	if lifecycle {
		kinds = []string{"httpGet", "tcpSocket", "exec", "sleep"}
	}
	switch k := pick(ch, kinds); k {
	case "httpGet", "tcpSocket":
		h := obj("port", 8080)
		if k == "httpGet" {
			h["path"] = "/healthz"
		}
		set(h, "host", pick(ch, hosts))
		return obj(k, h)
	case "grpc":
		return obj("grpc", obj("port", 8080))
	case "sleep":
		return obj("sleep", obj("seconds", 1))
	default:
		return obj("exec", obj("command", []any{"true"}))
	}
}

// configVersions are the values a config may give: every release from
// v1.0 to one past the newest, and latest. labelVersions adds values Pod
// Security admission reads as latest.
var (
	configVersions = func() []string {
		var out []string
		for minor := range 38 {
			out = append(out, fmt.Sprintf("v1.%d", minor))
		}
		return append(out, "latest")
	}()
	labelVersions = append(slices.Clone(configVersions), "", "v1.05", "1.30", "v2.0", "v1.30.0", "LATEST", "v1.99")
)

// generatedCase turns choices into a case: a pod, where it sits, and the
// version it is judged at.
func generatedCase(name string, ch chooser, pod map[string]any) pssCase {
	c := pssCase{name: name, pod: pod, config: pick(ch, configVersions)}
	if ch.intn(3) > 0 {
		label := pick(ch, labelVersions)
		c.label = &label
	}
	k := ch.intn(8)
	if k >= len(wrappers) {
		k = 0 // Pods half the time
	}
	c.object, c.prefix = wrap(pod, k)
	return c
}

// generatedCases is the deterministic corpus.
func generatedCases(n int) []pssCase {
	ch := &rngChooser{r: rand.New(rand.NewPCG(2026, 1))}
	cases := make([]pssCase, n)
	for i := range cases {
		cases[i] = generatedCase(fmt.Sprintf("generated #%d", i), ch, generatePod(ch))
	}
	return cases
}

// FuzzPSSDifferential judges pods the fuzzer makes by Tollgate and by the
// reference. A pod is the JSON of a pod (metadata and spec), or any other
// bytes, which drive the generator's choices; version picks the version
// and how it is given (config or Namespace label), wrap the pod controller.
// The seeds are the corpus: the files in testdata/fuzz, the library's
// fixtures, generated pods and the reference fixtures of the newest
// version (all of them when fuzzing).
func FuzzPSSDifferential(f *testing.F) {
	ref, tg := newPSA(f), newTollgate(f)
	fuzzing := flag.Lookup("test.fuzz").Value.String() != ""
	// Versions and pod controllers spread over the seeds.
	spread := rand.New(rand.NewPCG(2026, 3))
	for _, d := range libraryFixtures(f) {
		if d.Kind() == "Pod" {
			b, _ := json.Marshal(obj("metadata", d.Object["metadata"], "spec", d.Object["spec"]))
			f.Add(b, uint8(spread.IntN(256)), uint8(spread.IntN(len(wrappers))))
		}
	}
	ch := &rngChooser{r: rand.New(rand.NewPCG(2026, 2))}
	for range 50 {
		ch.record = nil
		generatePod(ch)
		f.Add(slices.Clone(ch.record), uint8(spread.IntN(256)), uint8(spread.IntN(len(wrappers))))
	}
	fixtures := loadReferenceFixtures(f)
	newest := newestVersion(fixtures)
	for i, fx := range fixtures {
		if !fuzzing && fx.version != newest {
			continue
		}
		b, _ := json.Marshal(fx.pod)
		f.Add(b, uint8(2*slices.Index(labelVersions, fx.version)+i%2), uint8(i))
	}
	f.Fuzz(func(t *testing.T, pod []byte, version, wrapper uint8) {
		c, ok := fuzzCase(pod, version, wrapper)
		if !ok {
			t.Skip("not a pod")
		}
		if r := judge(t, tg, ref, &c); len(r.problems) > 0 {
			t.Errorf("%s\n    %s", c.describe(), strings.Join(r.problems, "\n    "))
		}
	})
}

// fuzzCase reads a fuzz input: version's lowest bit says whether the
// version comes from a Namespace label (1) or the config (0), the rest
// indexes labelVersions (configVersions for the config).
func fuzzCase(data []byte, version, wrapper uint8) (pssCase, bool) {
	var pod map[string]any
	if len(data) > 0 && data[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&pod); err != nil {
			return pssCase{}, false
		}
		if _, ok := pod["spec"].(map[string]any); !ok {
			return pssCase{}, false
		}
		if _, ok := pod["metadata"].(map[string]any); !ok && pod["metadata"] != nil {
			return pssCase{}, false
		}
	} else {
		pod = generatePod(&byteChooser{b: data})
	}
	c := pssCase{name: "fuzz", pod: pod, config: "latest"}
	i := int(version >> 1)
	if version&1 == 1 {
		label := labelVersions[i%len(labelVersions)]
		c.label = &label
	} else {
		c.config = configVersions[i%len(configVersions)]
	}
	c.object, c.prefix = wrap(pod, int(wrapper))
	return c, true
}

package pssref_test

// The Pod Security Standards policies claim to admit what the standard
// admits, control by control and version by version. These tests hold them
// to the reference implementation, k8s.io/pod-security-admission (the code
// the API server's Pod Security admission runs): every Pod of a corpus is
// judged by Tollgate's engine with the embedded library and by the
// reference evaluator, and
//
//   - each reference check, run on its own at the version judged, fails
//     exactly when the Tollgate policy of its control (checkPolicies)
//     reports a finding;
//   - the verdict per level agrees: baseline is the pss-baseline-*
//     policies, restricted is those and the pss-restricted-* ones.
//
// The corpus is the reference module's own fixtures (read from the module
// cache, every level and version), the library's fixture suites, and a
// generated corpus (pss_generate_test.go) that sets every field the
// standard reads, in Pods and pod templates, in containers, init containers
// and ephemeral containers. FuzzPSSDifferential does the same on generated
// and mutated Pods.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
	"github.com/tollgate-dev/tollgate/policies/manifest"
)

// checkPolicies maps each check of the reference to the library policy
// that implements its control. It is the one table of the correspondence;
// TestCheckPolicies keeps it complete both ways.
var checkPolicies = map[policy.CheckID]string{
	"appArmorProfile":            "pss-baseline-apparmor",
	"capabilities_baseline":      "pss-baseline-capabilities",
	"hostNamespaces":             "pss-baseline-host-namespaces",
	"hostPathVolumes":            "pss-baseline-host-path",
	"hostPorts":                  "pss-baseline-host-ports",
	"hostProbesAndHostLifecycle": "pss-baseline-host-probes",
	"privileged":                 "pss-baseline-privileged",
	"procMount":                  "pss-baseline-proc-mount",
	"seccompProfile_baseline":    "pss-baseline-seccomp",
	"seLinuxOptions":             "pss-baseline-selinux",
	"sysctls":                    "pss-baseline-sysctls",
	"windowsHostProcess":         "pss-baseline-host-process",
	"allowPrivilegeEscalation":   "pss-restricted-privilege-escalation",
	"capabilities_restricted":    "pss-restricted-capabilities",
	"procMount_restricted":       "pss-restricted-proc-mount",
	"restrictedVolumes":          "pss-restricted-volume-types",
	"runAsNonRoot":               "pss-restricted-run-as-non-root",
	"runAsUser":                  "pss-restricted-run-as-user",
	"seccompProfile_restricted":  "pss-restricted-seccomp",
}

const pssModule = "k8s.io/pod-security-admission"

// psa is the reference evaluator, whole and check by check.
type psa struct {
	all    policy.Evaluator
	checks []referenceCheck
}

type referenceCheck struct {
	id     policy.CheckID
	level  api.Level
	policy string
	// alone evaluates this check and no other.
	alone policy.Evaluator
}

func newPSA(t testing.TB) *psa {
	t.Helper()
	all, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("reference evaluator: %v", err)
	}
	r := &psa{all: all}
	for _, c := range policy.DefaultChecks() {
		alone, err := policy.NewEvaluator([]policy.Check{c}, nil)
		if err != nil {
			t.Fatalf("reference check %s: %v", c.ID, err)
		}
		r.checks = append(r.checks, referenceCheck{id: c.ID, level: c.Level, policy: checkPolicies[c.ID], alone: alone})
	}
	return r
}

// allowed is the reference's verdict.
func (r *psa) allowed(lv api.LevelVersion, meta *metav1.ObjectMeta, spec *corev1.PodSpec) bool {
	for _, res := range r.all.EvaluatePod(lv, meta, spec) {
		if !res.Allowed {
			return false
		}
	}
	return true
}

// failing is the set of checks that fail on their own at version v, with
// the reason each gives.
func (r *psa) failing(v api.Version, meta *metav1.ObjectMeta, spec *corev1.PodSpec) map[policy.CheckID]string {
	out := map[policy.CheckID]string{}
	for _, c := range r.checks {
		for _, res := range c.alone.EvaluatePod(api.LevelVersion{Level: c.level, Version: v}, meta, spec) {
			if !res.Allowed {
				out[c.id] = res.ForbiddenReason + ": " + res.ForbiddenDetail
			}
		}
	}
	return out
}

// tollgate is the engine with the embedded library, one per configured
// podSecurity.version.
type tollgate struct {
	mods    []policies.Module
	mu      sync.Mutex
	engines map[string]*policies.Engine
}

var (
	tollgateOnce   sync.Once
	sharedTollgate *tollgate
)

// newTollgate returns the engines the tests share: one per configured
// version, compiled on first use.
func newTollgate(t testing.TB) *tollgate {
	t.Helper()
	tollgateOnce.Do(func() {
		mods, err := policies.ReadFS(library.FS(), "library", false)
		if err != nil {
			t.Fatal(err)
		}
		sharedTollgate = &tollgate{mods: mods, engines: map[string]*policies.Engine{}}
	})
	if sharedTollgate == nil {
		t.Fatal("reading the library failed in an earlier test")
	}
	return sharedTollgate
}

func (tg *tollgate) engine(t testing.TB, version string) *policies.Engine {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if e, ok := tg.engines[version]; ok {
		return e
	}
	cfg := policies.DefaultConfig()
	cfg.PodSecurity.Version = version
	e, err := policies.New(context.Background(), policies.Options{Modules: tg.mods, Config: cfg})
	if err != nil {
		t.Fatalf("engine at podSecurity.version %s: %v", version, err)
	}
	tg.engines[version] = e
	return e
}

// pssCase is one judgement: an object (a Pod or a pod controller) judged at
// the version a config and, optionally, a Namespace label give.
type pssCase struct {
	name string
	// object is what Tollgate judges; pod is the pod (metadata and spec) it
	// carries, which the reference judges.
	object, pod map[string]any
	// prefix is the path of the pod inside object ("spec.template.").
	prefix string
	// config is podSecurity.version; label, when set, is the Namespace's
	// pod-security.kubernetes.io/enforce-version label.
	config string
	label  *string
}

const caseNamespace = "conformance"

// version is the version the reference judges by, as Pod Security
// admission resolves it.
func (c *pssCase) version() api.Version {
	v := c.config
	if c.label != nil {
		v = *c.label
	}
	parsed, _ := api.ParseVersion(v) // an invalid value reads as latest
	return parsed
}

func (c *pssCase) describe() string {
	b, _ := json.Marshal(c.object)
	at := "config podSecurity.version " + c.config
	if c.label != nil {
		at += fmt.Sprintf(", namespace label %q", *c.label)
	}
	return fmt.Sprintf("%s (%s)\n    %s", c.name, at, b)
}

// decodePod reads a pod as the API server hands it to admission: JSON
// with case-sensitive field names, unknown fields dropped, and a volume with
// no source defaulted to an emptyDir (SetDefaults_Volume; the reference's
// own fixture restrictedvolumes0 relies on it). ok is false when it is not
// a pod.
func decodePod(pod map[string]any) (*corev1.Pod, bool) {
	b, err := json.Marshal(pod)
	if err != nil {
		return nil, false
	}
	var p corev1.Pod
	if err := kjson.UnmarshalCaseSensitivePreserveInts(b, &p); err != nil {
		return nil, false
	}
	for i := range p.Spec.Volumes {
		if reflect.ValueOf(p.Spec.Volumes[i].VolumeSource).IsZero() {
			p.Spec.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
	return &p, true
}

// result is what one judgement found.
type result struct {
	// skipped: the object is no pod the API server could decode.
	skipped bool
	// rejected: the API server's validation rejects the pod before
	// admission (see apiServerRejects), and the restricted verdicts
	// differ, Tollgate's being the stricter.
	rejected bool
	// allowed are the reference's verdicts at baseline and restricted.
	allowed  [2]bool
	problems []string
}

var levels = [2]api.Level{api.LevelBaseline, api.LevelRestricted}

func judge(t testing.TB, tg *tollgate, ref *psa, c *pssCase) result {
	var res result
	pod, ok := decodePod(c.pod)
	if !ok {
		res.skipped = true
		return res
	}
	v := c.version()
	failing := ref.failing(v, &pod.ObjectMeta, &pod.Spec)

	var ns map[string]any
	if c.label != nil {
		name := caseNamespace
		if meta, ok := c.object["metadata"].(map[string]any); ok && meta["namespace"] != nil {
			name, _ = meta["namespace"].(string)
		}
		ns = map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": name, "labels": map[string]any{api.EnforceVersionLabel: *c.label}},
		}
	}
	d := tg.engine(t, c.config).Evaluate(context.Background(), policies.ObjectInput(policies.SourceCheck, c.object, ns))
	for _, e := range d.Errors {
		res.problems = append(res.problems, "policy error: "+e.Error())
	}
	fired := map[string][]string{}
	for _, f := range d.Findings {
		if !strings.HasPrefix(f.Policy, "pss-") {
			continue
		}
		fired[f.Policy] = append(fired[f.Policy], f.Path+": "+f.Message)
		if !strings.HasPrefix(f.Path, c.prefix) {
			res.problems = append(res.problems, fmt.Sprintf("%s reports path %s, outside the pod at %q", f.Policy, f.Path, c.prefix))
		}
	}
	known := map[string]bool{}
	for _, rc := range ref.checks {
		known[rc.policy] = true
		reason, fails := failing[rc.id]
		got := fired[rc.policy]
		switch {
		case fails && len(got) == 0:
			res.problems = append(res.problems, fmt.Sprintf("reference check %s fails (%s) at %s; %s reports nothing", rc.id, reason, v, rc.policy))
		case !fails && len(got) > 0:
			res.problems = append(res.problems, fmt.Sprintf("reference check %s passes at %s; %s reports %q", rc.id, v, rc.policy, got))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(fired)) {
		if !known[id] {
			res.problems = append(res.problems, fmt.Sprintf("%s reports %q but maps to no reference check", id, fired[id]))
		}
	}
	for i, level := range levels {
		res.allowed[i] = ref.allowed(api.LevelVersion{Level: level, Version: v}, &pod.ObjectMeta, &pod.Spec)
		tollgateAllowed := true
		for id := range fired {
			if level == api.LevelRestricted || strings.HasPrefix(id, "pss-baseline-") {
				tollgateAllowed = false
			}
		}
		switch {
		case tollgateAllowed == res.allowed[i]:
		case level == api.LevelRestricted && !tollgateAllowed && apiServerRejects(&pod.Spec):
			res.rejected = true
		default:
			res.problems = append(res.problems, fmt.Sprintf("%s at %s: reference allowed=%v, Tollgate allowed=%v", level, v, res.allowed[i], tollgateAllowed))
		}
	}
	return res
}

// apiServerRejects reports whether the API server's validation
// (k8s.io/kubernetes/pkg/apis/core/validation) rejects the pod before any
// admission plugin sees it, for one of the two reasons that make the
// reference's restricted level admit what its own baseline level denies:
// a restricted check that exempts a pod overrides the baseline check of the
// same control, so the reference admits at restricted
//
//   - a Windows pod that sets Linux-only fields the restricted checks
//     exempt it from (seccompProfile, capabilities; validateWindows forbids
//     them on Windows pods), and
//   - a volume with two sources, one allowed (restrictedVolumes passes it)
//     and one hostPath (hostPathVolumes would deny it); validateVolumeSource
//     allows one source per volume.
//
// Tollgate has no level: its baseline policies judge whatever the
// restricted ones judge, so on these pods its restricted verdict is the
// stricter one. Every check still corresponds on them.
func apiServerRejects(spec *corev1.PodSpec) bool {
	if spec.OS != nil && spec.OS.Name == corev1.Windows {
		if sc := spec.SecurityContext; sc != nil && (sc.SeccompProfile != nil || sc.AppArmorProfile != nil || sc.SELinuxOptions != nil ||
			sc.RunAsUser != nil || len(sc.Sysctls) > 0) {
			return true
		}
		rejected := false
		visit(spec, func(c *corev1.Container) {
			if sc := c.SecurityContext; sc != nil && (sc.SeccompProfile != nil || sc.AppArmorProfile != nil || sc.SELinuxOptions != nil ||
				sc.Capabilities != nil || sc.Privileged != nil || sc.AllowPrivilegeEscalation != nil || sc.ProcMount != nil || sc.RunAsUser != nil) {
				rejected = true
			}
		})
		if rejected {
			return true
		}
	}
	for i := range spec.Volumes {
		sources := 0
		v := reflect.ValueOf(spec.Volumes[i].VolumeSource)
		for j := range v.NumField() {
			if !v.Field(j).IsNil() {
				sources++
			}
		}
		if sources > 1 {
			return true
		}
	}
	return false
}

func visit(spec *corev1.PodSpec, f func(*corev1.Container)) {
	for i := range spec.InitContainers {
		f(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		f(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		f((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
}

// tally counts what a corpus exercised.
type tally struct {
	cases, skipped, rejected int
	allowed, denied          [2]int
}

func (s *tally) add(r result) {
	s.cases++
	switch {
	case r.skipped:
		s.skipped++
		return
	case r.rejected:
		s.rejected++
	}
	for i, ok := range r.allowed {
		if ok {
			s.allowed[i]++
		} else {
			s.denied[i]++
		}
	}
}

func (s *tally) String() string {
	return fmt.Sprintf("%d cases (%d not pods): baseline %d allowed / %d denied, restricted %d allowed / %d denied; %d rejected by API validation with a stricter restricted verdict",
		s.cases, s.skipped, s.allowed[0], s.denied[0], s.allowed[1], s.denied[1], s.rejected)
}

// maxReported bounds the disagreements a test prints.
var maxReported = 20

func run(t *testing.T, tg *tollgate, ref *psa, cases []pssCase) *tally {
	t.Helper()
	var s tally
	failures := 0
	for i := range cases {
		r := judge(t, tg, ref, &cases[i])
		s.add(r)
		if len(r.problems) > 0 {
			if failures++; failures <= maxReported {
				t.Errorf("%s\n    %s", cases[i].describe(), strings.Join(r.problems, "\n    "))
			}
		}
	}
	if failures > maxReported {
		t.Errorf("... %d cases disagree in all", failures)
	}
	return &s
}

// wrap puts a pod into the controller kind given by index k (0: the Pod
// itself), returning the object and the path of the pod in it.
func wrap(pod map[string]any, k int) (map[string]any, string) {
	meta, _ := pod["metadata"].(map[string]any)
	tmplMeta := map[string]any{}
	if a, ok := meta["annotations"]; ok {
		tmplMeta["annotations"] = a
	}
	tmplMeta["labels"] = map[string]any{"app": "conformance"}
	tmpl := map[string]any{"metadata": tmplMeta, "spec": pod["spec"]}
	objMeta := map[string]any{"name": "conformance", "namespace": caseNamespace}
	selector := map[string]any{"matchLabels": map[string]any{"app": "conformance"}}
	switch k % len(wrappers) {
	case 1:
		return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": objMeta,
			"spec": map[string]any{"selector": selector, "template": tmpl}}, "spec.template."
	case 2:
		return map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": objMeta,
			"spec": map[string]any{"schedule": "0 * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": tmpl}}}}, "spec.jobTemplate.spec.template."
	case 3:
		return map[string]any{"apiVersion": "v1", "kind": "PodTemplate", "metadata": objMeta, "template": tmpl}, "template."
	case 4:
		return map[string]any{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": objMeta,
			"spec": map[string]any{"selector": selector, "template": tmpl}}, "spec.template."
	}
	return asPod(pod), ""
}

var wrappers = []string{"Pod", "Deployment", "CronJob", "PodTemplate", "DaemonSet"}

// asPod completes a pod's type and namespace.
func asPod(pod map[string]any) map[string]any {
	out := maps.Clone(pod)
	out["apiVersion"], out["kind"] = "v1", "Pod"
	meta, _ := pod["metadata"].(map[string]any)
	meta = maps.Clone(meta)
	if meta == nil {
		meta = map[string]any{}
	}
	meta["namespace"] = caseNamespace
	out["metadata"] = meta
	return out
}

// moduleDir is where the go command keeps the reference module's source.
func moduleDir(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-json", pssModule)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m -json %s: %v\n%s", pssModule, err, stderr.String())
	}
	var m struct {
		Version, Dir string
		Replace      *struct{ Version, Dir string }
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go list -m -json %s: %v", pssModule, err)
	}
	// The reference must be upstream: a replace (Kyverno's fork, which
	// the main module links) would hold the library to other semantics.
	if m.Replace != nil {
		t.Fatalf("%s is replaced by %s %s: the differential tests judge against the upstream module only", pssModule, m.Replace.Dir, m.Replace.Version)
	}
	if m.Dir == "" {
		t.Fatalf("%s %s is not in the module cache: run go mod download %s", pssModule, m.Version, pssModule)
	}
	return m.Dir
}

// referenceFixture is one fixture of the reference module: a pod its own
// tests expect a level to pass or fail at a version.
type referenceFixture struct {
	level   api.Level
	version string
	pass    bool
	name    string
	pod     map[string]any
}

var (
	referenceOnce     sync.Once
	referenceFixtures []referenceFixture
	referenceErr      error
)

// loadReferenceFixtures reads test/testdata/<level>/<version>/{pass,fail}/*.yaml
// of the reference module, where its TestFixtures writes them.
func loadReferenceFixtures(t testing.TB) []referenceFixture {
	t.Helper()
	referenceOnce.Do(func() {
		root := filepath.Join(moduleDir(t), "test", "testdata")
		referenceErr = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			parts := strings.Split(filepath.ToSlash(rel), "/")
			if len(parts) != 4 {
				return fmt.Errorf("%s: want <level>/<version>/<pass|fail>/<name>.yaml", rel)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			var pod map[string]any
			if err := yaml.Unmarshal(b, &pod); err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			referenceFixtures = append(referenceFixtures, referenceFixture{
				level: api.Level(parts[0]), version: parts[1], pass: parts[2] == "pass", name: rel, pod: pod,
			})
			return nil
		})
	})
	if referenceErr != nil {
		t.Fatalf("reading the reference fixtures: %v", referenceErr)
	}
	if len(referenceFixtures) < 1000 {
		t.Fatalf("found %d reference fixtures; the layout of %s/test/testdata changed", len(referenceFixtures), pssModule)
	}
	return referenceFixtures
}

// newestVersion is the newest version the fixtures are for.
func newestVersion(fixtures []referenceFixture) string {
	var newest string
	var nv api.Version
	for _, f := range fixtures {
		if v, _ := api.ParseVersion(f.version); nv.Older(v) {
			newest, nv = f.version, v
		}
	}
	return newest
}

// libraryFixtures are the pods of the library's PSS fixture suites.
func libraryFixtures(t testing.TB) []manifest.Document {
	t.Helper()
	files, err := filepath.Glob("../pss/*/testdata/*/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := manifest.Load(files, nil, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 40 {
		t.Fatalf("found %d fixture documents under pss/*/testdata", len(docs))
	}
	return docs
}

// epochs are the versions at which some control changes, with their
// neighbours, latest, and values Pod Security admission reads as latest.
var epochs = []string{
	"v1.0", "v1.7", "v1.8", "v1.18", "v1.19", "v1.21", "v1.22", "v1.23", "v1.24", "v1.25",
	"v1.26", "v1.27", "v1.28", "v1.29", "v1.30", "v1.31", "v1.32", "v1.33", "v1.34", "v1.35", "v1.36", "v1.37", "latest",
}

// TestCheckPolicies: the table maps every check of the reference to a
// distinct library policy, and every PSS policy of the library is in it.
func TestCheckPolicies(t *testing.T) {
	seen := map[string]policy.CheckID{}
	for _, c := range policy.DefaultChecks() {
		id, ok := checkPolicies[c.ID]
		if !ok {
			t.Errorf("reference check %s (%s) maps to no library policy", c.ID, c.Level)
			continue
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("%s implements both %s and %s", id, prev, c.ID)
		}
		seen[id] = c.ID
		if want := "pss-" + string(c.Level) + "-"; !strings.HasPrefix(id, want) {
			t.Errorf("check %s is %s; its policy %s should start with %s", c.ID, c.Level, id, want)
		}
	}
	if len(checkPolicies) != len(seen) {
		t.Errorf("the table maps %d checks; the reference has %d", len(checkPolicies), len(seen))
	}
	for _, m := range newTollgate(t).engine(t, "latest").Policies() {
		id := m.ID
		if _, ok := seen[id]; strings.HasPrefix(id, "pss-") && !ok {
			t.Errorf("%s implements no reference check", id)
		}
	}
}

// TestPodSecurityLatest: "latest" names the release of the reference module.
func TestPodSecurityLatest(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", pssModule)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", pssModule, err)
	}
	// k8s.io staging modules are v0.<minor>.<patch> for Kubernetes v1.<minor>.
	parts := strings.Split(strings.TrimSpace(string(out)), ".")
	if len(parts) < 2 || "v1."+parts[1] != policies.PodSecurityLatest {
		t.Errorf("%s is %s; policies.PodSecurityLatest is %s", pssModule, out, policies.PodSecurityLatest)
	}
}

// TestPSSReferenceFixtures judges every fixture of the reference module at
// its level's version (-short: the versions around a change): each through
// a Namespace label or the config, every third one inside a pod controller.
func TestPSSReferenceFixtures(t *testing.T) {
	t.Parallel()
	ref, tg := newPSA(t), newTollgate(t)
	fixtures := loadReferenceFixtures(t)
	newest := newestVersion(fixtures)
	var cases []pssCase
	for i, f := range fixtures {
		if testing.Short() && !slices.Contains(epochs, f.version) {
			continue // -short: the versions where a control changes
		}
		versions := []string{f.version}
		if f.version == newest {
			versions = append(versions, "latest", policies.PodSecurityLatest)
		}
		for _, v := range versions {
			k := 0 // every third one in a pod controller
			if i%3 == 0 {
				k = 1 + i/3%(len(wrappers)-1)
			}
			obj, prefix := wrap(f.pod, k)
			c := pssCase{name: f.name, object: obj, pod: f.pod, prefix: prefix, config: "latest"}
			if i%2 == 0 {
				label := v
				c.label = &label
			} else {
				c.config = v
			}
			cases = append(cases, c)
		}
		// The fixture says what its level must decide; a harness that
		// misreads the reference would disagree with it.
		pod, ok := decodePod(f.pod)
		if !ok {
			t.Fatalf("%s does not decode as a pod", f.name)
		}
		v, _ := api.ParseVersion(f.version)
		if got := ref.allowed(api.LevelVersion{Level: f.level, Version: v}, &pod.ObjectMeta, &pod.Spec); got != f.pass {
			t.Errorf("%s: the reference evaluator allows=%v", f.name, got)
		}
	}
	s := run(t, tg, ref, cases)
	t.Logf("reference fixtures: %d files, %s", len(fixtures), s)
	if s.skipped > 0 || s.rejected > 0 {
		t.Errorf("reference fixtures: %d not decoded, %d rejected by validation", s.skipped, s.rejected)
	}
}

// TestPSSLibraryFixtures judges the pods of the library's own fixture
// suites at every version where a control changes.
func TestPSSLibraryFixtures(t *testing.T) {
	t.Parallel()
	ref, tg := newPSA(t), newTollgate(t)
	e := tg.engine(t, "latest")
	var cases []pssCase
	docs := libraryFixtures(t)
	for i, d := range docs {
		gvk := policies.ParseAPIVersion(d.APIVersion(), d.Kind())
		tmplPath, ok := e.PodTemplatePath(gvk)
		if !ok {
			continue
		}
		tmpl := d.Object
		prefix := ""
		if tmplPath != "" {
			prefix = tmplPath + "."
			for _, k := range strings.Split(tmplPath, ".") {
				tmpl, _ = tmpl[k].(map[string]any)
			}
		}
		pod := map[string]any{"metadata": tmpl["metadata"], "spec": tmpl["spec"]}
		for j, v := range epochs {
			c := pssCase{name: fmt.Sprintf("%s#%d", d.File, d.Index), object: d.Object, pod: pod, prefix: prefix, config: "latest"}
			if (i+j)%2 == 0 {
				label := v
				c.label = &label
			} else {
				c.config = v
			}
			cases = append(cases, c)
		}
	}
	s := run(t, tg, ref, cases)
	t.Logf("library fixtures: %d documents, %s", len(docs), s)
	if s.skipped > 0 {
		t.Errorf("library fixtures: %d not decoded", s.skipped)
	}
}

// TestPSSGenerated judges the generated corpus.
func TestPSSGenerated(t *testing.T) {
	t.Parallel()
	ref, tg := newPSA(t), newTollgate(t)
	n := 3000
	if testing.Short() {
		n = 500
	}
	cases := generatedCases(n)
	s := run(t, tg, ref, cases)
	t.Logf("generated: %s", s)
	for i := range levels {
		if s.allowed[i] < n/20 || s.denied[i] < n/20 {
			t.Errorf("the generated corpus is lopsided at %s: %d allowed, %d denied", levels[i], s.allowed[i], s.denied[i])
		}
	}
	if s.skipped > 0 {
		t.Errorf("%d generated pods do not decode", s.skipped)
	}
}

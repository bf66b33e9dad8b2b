package policies

import (
	"slices"
	"strings"
	"testing"
)

const imagesCronJob = `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: shop}
spec:
  schedule: "0 1 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
          - {name: migrate, image: "registry.corp/team/migrate:1.0"}
          containers:
          - {name: job, image: "registry.corp/team/job:2.0"}
          - {name: sidecar, image: "registry.corp/team/job:2.0"}
          - {name: nameless}
`

func TestImagesOfPodsAndTemplates(t *testing.T) {
	e := mutationEngine(t, "")
	in := ObjectInput(SourceAdmission, yamlObject(t, imagesCronJob), teamNamespace)
	var got []string
	for _, img := range e.Images(in) {
		got = append(got, img.Path+"="+img.Image)
	}
	want := []string{
		"spec.jobTemplate.spec.template.spec.initContainers[0].image=registry.corp/team/migrate:1.0",
		"spec.jobTemplate.spec.template.spec.containers[0].image=registry.corp/team/job:2.0",
		"spec.jobTemplate.spec.template.spec.containers[1].image=registry.corp/team/job:2.0",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("images:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	pod := yamlObject(t, `
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers: [{name: app, image: app:1}]
  ephemeralContainers: [{name: debugger, image: busybox:1.36}]
`)
	in = ObjectInput(SourceAdmission, pod, teamNamespace)
	if n := len(e.Images(in)); n != 2 {
		t.Errorf("a pod lists %d images, want 2 (containers and ephemeral containers)", n)
	}
	in.SubResource = "ephemeralcontainers"
	if imgs := e.Images(in); len(imgs) != 1 || imgs[0].Path != "spec.ephemeralContainers[0].image" {
		t.Errorf("pods/ephemeralcontainers lists %+v, want the debug container only", imgs)
	}
	in.SubResource = "status"
	if imgs := e.Images(in); len(imgs) != 0 {
		t.Errorf("pods/status lists %+v", imgs)
	}
	cm := ObjectInput(SourceAdmission, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}, nil)
	if imgs := e.Images(cm); len(imgs) != 0 {
		t.Errorf("a ConfigMap lists %+v", imgs)
	}
}

func TestMutatePinsImagesIdempotently(t *testing.T) {
	e := mutationEngine(t, "")
	obj := yamlObject(t, imagesCronJob)
	in := ObjectInput(SourceAdmission, obj, teamNamespace)
	in.Operation = "CREATE"
	const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	var pins []ImagePin
	for _, img := range e.Images(in) {
		pins = append(pins, ImagePin{Image: img, Pinned: img.Image + digest})
	}
	m, err := e.Mutate(in, pins...)
	if err != nil {
		t.Fatal(err)
	}
	got := applyPatch(t, obj, m)
	in2 := ObjectInput(SourceAdmission, got, teamNamespace)
	in2.Operation = "CREATE"
	var again []ImagePin
	for _, img := range e.Images(in2) {
		if !strings.HasSuffix(img.Image, digest) {
			t.Errorf("%s = %s: not pinned", img.Path, img.Image)
		}
		again = append(again, ImagePin{Image: img, Pinned: img.Image})
	}
	anns := valueAt(t, got, "metadata.annotations").(map[string]any)
	if s := anns[InjectedAnnotation].(string); !strings.Contains(s, `"images":["registry.corp/team/job:2.0`+digest+`","registry.corp/team/migrate:1.0`+digest+`"]`) {
		t.Errorf("the injected annotation does not list the pinned images: %s", s)
	}
	m2, err := e.Mutate(in2, again...)
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Empty() {
		t.Errorf("second invocation patched: %+v", m2.Patch)
	}
	// A pin for an image that is not where it was listed is an error,
	// never a patch of some other field.
	stale := pins[0]
	stale.Image.Image = "registry.corp/team/other:1"
	if _, err := e.Mutate(in, stale); err == nil || !strings.Contains(err.Error(), "initContainers[0].image") {
		t.Errorf("stale pin: %v", err)
	}
}

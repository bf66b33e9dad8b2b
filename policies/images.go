package policies

import (
	"fmt"
	"slices"
)

// ContainerImage is one image reference in an object: in a Pod, or in the
// pod template of a workload, in any container list.
type ContainerImage struct {
	// Image is the reference as written.
	Image string
	// Container is the container's name and List its list
	// (containers, initContainers or ephemeralContainers).
	Container string
	List      string
	// Path is the field path of the image ("spec.template.spec.containers[0].image").
	Path string
	// segs is Path as JSON pointer segments, for patches.
	segs []any
}

// imageLists are the container lists of a pod spec, in the order a pod's
// containers start.
var imageLists = []string{"initContainers", "containers", "ephemeralContainers"}

// Images lists every container image of the object in the input: every
// container, init container and ephemeral container of a Pod or of a
// workload's pod template. On pods/ephemeralcontainers only the ephemeral
// containers are listed: nothing else of the pod changes through it.
func (e *Engine) Images(in *Input) []ContainerImage {
	return e.images(in.Kind, in.SubResource, in.Object)
}

// OldImages lists the images of the old object of an UPDATE, so a caller
// can tell the images an update brings from those already admitted.
func (e *Engine) OldImages(in *Input) []ContainerImage {
	return e.images(in.Kind, in.SubResource, in.OldObject)
}

func (e *Engine) images(kind GroupVersionKind, sub string, obj map[string]any) []ContainerImage {
	tmpl, ok := e.pods.template(kind)
	if !ok || obj == nil {
		return nil
	}
	lists := imageLists
	if sub == "ephemeralcontainers" {
		lists = []string{"ephemeralContainers"}
	} else if sub != "" {
		return nil
	}
	spec := make([]any, 0, len(tmpl)+1)
	for _, s := range tmpl {
		spec = append(spec, s)
	}
	spec = append(spec, "spec")
	p := &patcher{obj: obj}
	var out []ContainerImage
	for ref := range p.containers(spec, lists) {
		img, _ := ref.container["image"].(string)
		if img == "" {
			continue
		}
		name, _ := ref.container["name"].(string)
		segs := append(slices.Clone(spec), ref.list, ref.index, "image")
		out = append(out, ContainerImage{Image: img, Container: name, List: ref.list, Path: fieldPath(segs), segs: segs})
	}
	return out
}

// fieldPath renders segments as a field path: spec.containers[0].image.
func fieldPath(segs []any) string {
	var s string
	for _, seg := range segs {
		switch v := seg.(type) {
		case int:
			s += fmt.Sprintf("[%d]", v)
		case string:
			if s != "" {
				s += "."
			}
			s += v
		}
	}
	return s
}

// ImagePin replaces one container image with its verified, digest-pinned
// reference.
type ImagePin struct {
	Image ContainerImage
	// Pinned is the reference the image is replaced with (repo:tag@sha256:...).
	Pinned string
}

// pin replaces each pinned image, noting it under "images" in the
// injected annotation. A pin whose image already is the pinned reference
// adds nothing, so a second invocation stays empty.
func (p *patcher) pin(pins []ImagePin) error {
	for _, pin := range pins {
		if pin.Pinned == "" || pin.Pinned == pin.Image.Image {
			continue
		}
		if cur, ok := p.get(pin.Image.segs); !ok || cur != pin.Image.Image {
			return fmt.Errorf("%s: the image is not %q", pin.Image.Path, pin.Image.Image)
		}
		p.ensure(pin.Image.segs, pin.Pinned, true)
		p.note("images", pin.Pinned)
	}
	return nil
}

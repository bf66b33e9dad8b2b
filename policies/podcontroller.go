package policies

import (
	"strings"
)

// podControllers is the one place that knows where each kind keeps its pod.
// A pod policy is written against a Pod; the engine hands it the template
// found here and prefixes the paths it reports with Template.
type podControllers map[podKind][]string

type podKind struct{ group, kind string }

// newPodControllers lists the built-in kinds plus any the config adds.
func newPodControllers(extra []PodController) podControllers {
	tmpl := []string{"spec", "template"}
	pc := podControllers{
		{"", "Pod"}:                   {},
		{"", "PodTemplate"}:           {"template"},
		{"", "ReplicationController"}: tmpl,
		{"apps", "Deployment"}:        tmpl,
		{"apps", "ReplicaSet"}:        tmpl,
		{"apps", "StatefulSet"}:       tmpl,
		{"apps", "DaemonSet"}:         tmpl,
		{"extensions", "Deployment"}:  tmpl,
		{"extensions", "ReplicaSet"}:  tmpl,
		{"extensions", "DaemonSet"}:   tmpl,
		{"batch", "Job"}:              tmpl,
		{"batch", "CronJob"}:          {"spec", "jobTemplate", "spec", "template"},
	}
	for _, e := range extra {
		pc[podKind{e.Group, e.Kind}] = strings.Split(e.Template, ".")
	}
	return pc
}

// template returns the path of the pod template of a kind, and whether the
// kind carries one.
func (pc podControllers) template(gvk GroupVersionKind) ([]string, bool) {
	p, ok := pc[podKind{gvk.Group, gvk.Kind}]
	return p, ok
}

// hasPath reports whether a JSON-shaped object has objects all along path.
func hasPath(obj map[string]any, path []string) bool {
	cur := obj
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return false
		}
		cur = next
	}
	return true
}

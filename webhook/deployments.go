package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tollgate-dev/tollgate/policies"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// Deployment is an admitted change to a workload's pod template, as the
// decision log records it: evidence of a release, counted per namespace,
// team and profile for deployment frequency, with the lead time from
// commit to admission when the workload says when its commit was made.
type Deployment struct {
	// Team is the team of record: the namespace's team label, else the
	// workload's own.
	Team string `json:"team,omitempty"`
	// Profile is the namespace's profile, "none" without profiles.
	Profile string `json:"profile"`
	// Golden says the profile is the config's default profile: the
	// golden path.
	Golden bool `json:"golden"`
	// CommitTime is the time of the commit the change deploys, and
	// CommitTimeAnnotation where it was read; LeadTimeSeconds the time from
	// it to admission. Unset when the workload names no commit time, or
	// names the one of an earlier change.
	CommitTime           *time.Time `json:"commitTime,omitempty"`
	CommitTimeAnnotation string     `json:"commitTimeAnnotation,omitempty"`
	LeadTimeSeconds      *float64   `json:"leadTimeSeconds,omitempty"`
}

// NoProfile is the profile label of a deployment in a cluster (or
// namespace) no profile governs.
const NoProfile = "none"

// MaxLeadTime bounds a believable lead time: a commit time older than
// this (a rollback to an old commit, a wrong clock, a forged value) is
// ignored rather than let one request skew the figures for months.
const MaxLeadTime = 366 * 24 * time.Hour

// maxLoggedValue bounds how much of a bad annotation value is logged.
const maxLoggedValue = 64

// deploymentOf says whether an admitted request deploys: an allowed,
// real (not dry-run) CREATE or UPDATE of a workload with a pod template,
// not made by a controller, whose template is new or differs from the
// old object's. A bare Pod or PodTemplate is not a deployment, nor is a
// ReplicaSet or Job a controller made (its owner's change counted), nor a
// scale, a status update or a re-apply that changes nothing in the
// template. A nil result: no deployment.
func (r *Reviewer) deploymentOf(ctx context.Context, st *core.Set, req *Request, in *policies.Input, allowed bool) *Deployment {
	if !allowed || in.DryRun || req.SubResource != "" ||
		(req.Operation != admissionv1.Create && req.Operation != admissionv1.Update) {
		return nil
	}
	if in.Kind.Group == "" && (in.Kind.Kind == "Pod" || in.Kind.Kind == "PodTemplate") {
		return nil
	}
	tmplPath, ok := st.Engine.PodTemplatePath(in.Kind)
	if !ok || tmplPath == "" || controlled(in.Object) {
		return nil
	}
	path := strings.Split(tmplPath, ".")
	tmpl, ok := lookup(in.Object, path)
	if !ok {
		return nil
	}
	if req.Operation == admissionv1.Update {
		if old, ok := lookup(in.OldObject, path); ok && sameTemplate(old, tmpl) {
			return nil
		}
	}
	cfg := st.Engine.Config()
	profile := cfg.ProfileName(in.Namespace)
	d := &Deployment{
		Team:    teamOf(cfg, in),
		Profile: cmp.Or(profile, NoProfile),
		Golden:  profile != "" && profile == cfg.Profiles.Default,
	}
	r.leadTime(ctx, cfg, req, in, path, d)
	return d
}

// teamOf is the team of record: the namespace's team label (spend and
// budgets follow it too), else the workload's, else its pod template's.
func teamOf(cfg *policies.Config, in *policies.Input) string {
	key := cfg.Labels.Team.Key
	if v := stringAt(in.Namespace, "metadata", "labels", key); v != "" {
		return v
	}
	return stringAt(in.Object, "metadata", "labels", key)
}

// leadTime reads the commit time a change carries and sets the lead
// time. The annotations are read in order (CommitTimeAnnotation, then
// the config's), on the workload and then on its pod template. The value
// counts only when it is new (a CREATE, or an UPDATE that changes it):
// a change that keeps an earlier commit's time (a restart, a hand edit)
// deploys no new commit. A malformed value, one in the future or one
// older than MaxLeadTime is ignored with a warning in the server's log:
// it never fails the request, and the next annotation is read.
func (r *Reviewer) leadTime(ctx context.Context, cfg *policies.Config, req *Request, in *policies.Input, tmplPath []string, d *Deployment) {
	keys := append([]string{policies.CommitTimeAnnotation}, cfg.Deployments.CommitTimeAnnotations...)
	tmpl, _ := lookup(in.Object, tmplPath)
	oldTmpl, _ := lookup(in.OldObject, tmplPath)
	now := r.opts.Now().UTC()
	for _, key := range keys {
		for _, where := range []struct{ obj, old map[string]any }{{in.Object, in.OldObject}, {tmpl, oldTmpl}} {
			v, ok := annotation(where.obj, key)
			if !ok {
				continue
			}
			if old, had := annotation(where.old, key); had && old == v && req.Operation == admissionv1.Update {
				continue // the commit of an earlier change
			}
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
			var why string
			switch {
			case err != nil:
				why = "not an RFC 3339 time"
			case t.After(now):
				why = "in the future"
			case now.Sub(t) > MaxLeadTime:
				why = "older than the longest lead time believed"
			}
			if why != "" {
				if len(v) > maxLoggedValue {
					v = v[:maxLoggedValue] + "..."
				}
				r.opts.Logger.WarnContext(ctx, "commit time ignored", "uid", req.UID, "namespace", req.Namespace,
					"name", req.Name, "annotation", key, "value", v, "reason", why)
				continue
			}
			t = t.UTC()
			lead := math.Round(now.Sub(t).Seconds()*1000) / 1000
			d.CommitTime, d.CommitTimeAnnotation, d.LeadTimeSeconds = &t, key, &lead
			return
		}
	}
}

// controlled reports whether an object names a controller owner: a
// ReplicaSet of a Deployment, a Job of a CronJob. The owner's change is
// the deployment.
func controlled(obj map[string]any) bool {
	meta, _ := obj["metadata"].(map[string]any)
	refs, _ := meta["ownerReferences"].([]any)
	for _, ref := range refs {
		m, _ := ref.(map[string]any)
		if c, _ := m["controller"].(bool); c {
			return true
		}
	}
	return false
}

func lookup(obj map[string]any, path []string) (map[string]any, bool) {
	cur := obj
	for _, k := range path {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, cur != nil
}

func stringAt(obj map[string]any, path ...string) string {
	if len(path) == 0 {
		return ""
	}
	m, ok := lookup(obj, path[:len(path)-1])
	if !ok {
		return ""
	}
	s, _ := m[path[len(path)-1]].(string)
	return s
}

func annotation(obj map[string]any, key string) (string, bool) {
	a, ok := lookup(obj, []string{"metadata", "annotations"})
	if !ok {
		return "", false
	}
	v, ok := a[key].(string)
	return v, ok
}

// sameTemplate compares two pod templates as the API server means them:
// a missing field, null and an empty object or list are the same, numbers
// compare by value, quantities (under requests, limits and overhead) by
// amount, and the template's creationTimestamp, which the API server
// writes as null, is ignored.
func sameTemplate(a, b map[string]any) bool {
	return reflect.DeepEqual(normalize(a, ""), normalize(b, ""))
}

// normalize is the canonical form sameTemplate compares: nil for empty
// values, float64 for numbers, canonical strings for quantities.
func normalize(v any, parent string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		quantities := parent == "requests" || parent == "limits" || parent == "overhead"
		for k, e := range x {
			if parent == "metadata" && k == "creationTimestamp" {
				continue
			}
			var n any
			if s, ok := e.(string); ok && quantities {
				if q, err := resource.ParseQuantity(s); err == nil {
					n = q.String()
				} else {
					n = s
				}
			} else {
				n = normalize(e, k)
			}
			if n != nil {
				out[k] = n
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		if len(x) == 0 {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e, parent)
		}
		return out
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return string(x)
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return v
}

package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
)

// Report APIs, newest first: openreports.io where its CRDs are installed,
// else the policy working group's wgpolicyk8s.io.
var reportAPIs = []struct {
	group, version, namespaced, cluster string
}{
	{"openreports.io", "v1alpha1", "Report", "ClusterReport"},
	{"wgpolicyk8s.io", "v1alpha2", "PolicyReport", "ClusterPolicyReport"},
}

// Source names Tollgate in reports, so readers can tell its results from
// other engines'.
const Source = "tollgate"

// ControlsProperty is the result property listing the framework controls
// a policy evidences, "framework:id" comma-separated
// ("pss:baseline/privileged-containers,cis:5.2.2").
const ControlsProperty = "controls"

// managedLabel marks the reports Tollgate owns (it never touches others').
const managedLabel = "app.kubernetes.io/managed-by"

// ReportWriter is the Sink that writes a scan as one report per namespace
// and a cluster report, each replaced whole so fixed and deleted
// resources drop out, and deleted where a namespace has nothing left.
type ReportWriter struct {
	Client client.Client
	Mapper apimeta.RESTMapper
	// Name of the reports (default "tollgate").
	Name string
	// MaxResults caps the results kept in one report (default 1000); the
	// summary still counts them all.
	MaxResults int
	// ScannerVersion and LibraryVersion are recorded on each report, for
	// the compliance report's cover.
	ScannerVersion, LibraryVersion string
	// Cluster names the cluster on each report (tollgate serve
	// --cluster-name), so a report over several clusters can tell whose
	// Reports it read; the policy set that judged is recorded beside it.
	Cluster string
}

// Write implements Sink.
func (w *ReportWriter) Write(ctx context.Context, scan *Scan) error {
	name := w.Name
	if name == "" {
		name = "tollgate"
	}
	limit := w.MaxResults
	if limit <= 0 {
		limit = 1000
	}
	api, err := w.api()
	if err != nil {
		return err
	}
	// The reports that exist, to delete those of namespaces now clean.
	existing := map[string]bool{}
	for _, kind := range []string{api.namespaced, api.cluster} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(schema.GroupVersionKind{Group: api.group, Version: api.version, Kind: kind + "List"})
		if err := w.Client.List(ctx, list, client.MatchingLabels{managedLabel: Source}); err != nil {
			return fmt.Errorf("listing %s: %w", kind, err)
		}
		for _, it := range list.Items {
			if it.GetName() == name {
				existing[it.GetNamespace()] = true
			}
		}
	}
	namespaces := map[string]bool{}
	for ns := range scan.Results {
		namespaces[ns] = true
	}
	for ns := range scan.Evaluated {
		namespaces[ns] = true
	}
	var errs []error
	for ns := range existing {
		if !namespaces[ns] {
			if err := w.delete(ctx, api.group, api.version, api.kind(ns), ns, name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	keys := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		keys = append(keys, ns)
	}
	sort.Strings(keys)
	for _, ns := range keys {
		obj := buildReport(api.group+"/"+api.version, api.kind(ns), ns, name, scan, limit)
		anns := obj.GetAnnotations()
		if w.ScannerVersion != "" {
			anns[compliance.AnnotationScannerVersion] = w.ScannerVersion
		}
		if w.LibraryVersion != "" {
			anns[compliance.AnnotationLibraryVersion] = w.LibraryVersion
		}
		if w.Cluster != "" {
			anns[compliance.AnnotationCluster] = w.Cluster
		}
		if scan.PolicySet != "" {
			anns[compliance.AnnotationPolicySet] = scan.PolicySet
		}
		obj.SetAnnotations(anns)
		if err := w.upsert(ctx, obj); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type reportAPI struct {
	group, version, namespaced, cluster string
}

func (a reportAPI) kind(ns string) string {
	if ns == "" {
		return a.cluster
	}
	return a.namespaced
}

// api picks the report API the cluster serves.
func (w *ReportWriter) api() (reportAPI, error) {
	for _, a := range reportAPIs {
		if _, err := w.Mapper.RESTMapping(schema.GroupKind{Group: a.group, Kind: a.namespaced}, a.version); err == nil {
			return reportAPI(a), nil
		}
	}
	return reportAPI{}, errors.New("no report API is installed: install the openreports.io CRDs (or wgpolicyk8s.io's)")
}

func (w *ReportWriter) upsert(ctx context.Context, obj *unstructured.Unstructured) error {
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(obj.GroupVersionKind())
	err := w.Client.Get(ctx, client.ObjectKeyFromObject(obj), cur)
	switch {
	case apierrors.IsNotFound(err):
		if err := w.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	if cur.GetLabels()[managedLabel] != Source {
		return fmt.Errorf("%s %s/%s exists and is not Tollgate's: left alone", obj.GetKind(), obj.GetNamespace(), obj.GetName())
	}
	obj.SetResourceVersion(cur.GetResourceVersion())
	if err := w.Client.Update(ctx, obj); err != nil {
		return fmt.Errorf("updating %s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func (w *ReportWriter) delete(ctx context.Context, group, version, kind, ns, name string) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind})
	obj.SetNamespace(ns)
	obj.SetName(name)
	if err := w.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s/%s: %w", kind, ns, name, err)
	}
	return nil
}

// buildReport is one namespace's report (or the cluster's, ns "").
func buildReport(apiVersion, kind, ns, name string, scan *Scan, limit int) *unstructured.Unstructured {
	results := scan.Results[ns]
	sort.SliceStable(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if sa, sb := severityRank(a.Finding.Severity), severityRank(b.Finding.Severity); sa != sb {
			return sa > sb
		}
		if a.Finding.Policy != b.Finding.Policy {
			return a.Finding.Policy < b.Finding.Policy
		}
		return a.Resource.Kind+"/"+a.Resource.Name < b.Resource.Kind+"/"+b.Resource.Name
	})
	summary := map[string]int64{"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
	failing := map[string]bool{} // resource UID + policy: not a pass
	entries := make([]any, 0, min(len(results), limit))
	for _, r := range results {
		outcome := outcomeOf(r.Finding)
		summary[outcome]++
		failing[r.Resource.UID+"|"+r.Finding.Policy] = true
		if len(entries) < limit {
			entries = append(entries, resultEntry(r, outcome, scan.Finished))
		}
	}
	if pass := int64(scan.Evaluated[ns] - len(failing)); pass > 0 {
		summary["pass"] = pass
	}
	// Examples of what passed, one entry per policy, after every finding:
	// with the examined counts they let an auditor trace a passed control.
	passed := scan.Passed[ns]
	ids := make([]string, 0, len(passed))
	for id := range passed {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if len(entries) >= limit || len(passed[id]) == 0 {
			break
		}
		entries = append(entries, passEntry(id, passed[id], scan.Examined[ns][id], scan.Finished))
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion,
		"kind":       kind,
		"metadata": map[string]any{
			"name": name,
			"labels": map[string]any{
				managedLabel:              Source,
				"tollgate.dev/generation": strconv.FormatInt(scan.Generation, 10),
			},
			"annotations": map[string]any{
				"tollgate.dev/scanned-at": scan.Finished.UTC().Format(time.RFC3339),
				"tollgate.dev/results":    fmt.Sprintf("%d of %d listed", min(len(entries), len(results)), len(results)),
			},
		},
		"source":  Source,
		"summary": summaryAny(summary),
		"results": entries,
	}}
	// What each policy examined, even nothing: a report without the
	// annotation reads as written by an audit that did not record it.
	if examined, err := compliance.ExaminedAnnotation(scan.Examined[ns]); err == nil {
		anns := obj.Object["metadata"].(map[string]any)["annotations"].(map[string]any)
		anns[compliance.AnnotationExamined] = examined
	}
	if ns != "" {
		obj.SetNamespace(ns)
		obj.Object["scope"] = map[string]any{"apiVersion": "v1", "kind": "Namespace", "name": ns}
	}
	return obj
}

// passEntry is a pass result naming examples of the objects that passed a
// policy in a report's scope; the message counts them all.
func passEntry(policy string, examples []Resource, byKind map[string]int, at time.Time) map[string]any {
	examined := 0
	for _, n := range byKind {
		examined += n
	}
	resources := make([]any, len(examples))
	for i, r := range examples {
		resources[i] = map[string]any{"apiVersion": r.APIVersion, "kind": r.Kind, "namespace": r.Namespace, "name": r.Name, "uid": r.UID}
	}
	return map[string]any{
		"source":    Source,
		"policy":    policy,
		"rule":      policy,
		"result":    "pass",
		"scored":    true,
		"timestamp": map[string]any{"seconds": at.Unix(), "nanos": int64(0)},
		"message":   fmt.Sprintf("passed; %d objects examined here, these among those that passed", examined),
		"resources": resources,
	}
}

// outcomeOf maps a finding to a report result: enforce is fail, warn and
// audit are warn, a waived finding is skip (the exception is in the
// properties).
func outcomeOf(f policies.Finding) string {
	switch {
	case f.Waived():
		return "skip"
	case f.Action == policies.ActionEnforce:
		return "fail"
	default:
		return "warn"
	}
}

func resultEntry(r Result, outcome string, at time.Time) map[string]any {
	f := r.Finding
	props := map[string]any{}
	if f.Path != "" {
		props["path"] = f.Path
	}
	if len(f.Controls) > 0 {
		ids := make([]string, 0, len(f.Controls))
		for _, c := range f.Controls {
			ids = append(ids, c.Framework+":"+c.ID)
		}
		props[ControlsProperty] = strings.Join(ids, ",")
	}
	if f.Remediation != "" {
		props["remediation"] = truncate(f.Remediation, 1024)
	}
	if f.Exception != nil {
		props["exception"] = f.Exception.Namespace + "/" + f.Exception.Name
	}
	for k, v := range compliance.ScanProperties(r.Image, r.Scan) {
		props[k] = v
	}
	if r.Scan != nil && r.Team != "" {
		props[compliance.PropTeam] = r.Team
	}
	entry := map[string]any{
		"source":    Source,
		"policy":    f.Policy,
		"rule":      f.Policy,
		"result":    outcome,
		"scored":    true,
		"timestamp": map[string]any{"seconds": at.Unix(), "nanos": int64(0)},
		"message":   truncate(f.Message, 1024),
		"resources": []any{map[string]any{
			"apiVersion": r.Resource.APIVersion, "kind": r.Resource.Kind,
			"namespace": r.Resource.Namespace, "name": r.Resource.Name, "uid": r.Resource.UID,
		}},
		"properties": props,
	}
	if f.Title != "" {
		entry["category"] = truncate(f.Title, 256)
	}
	if sev := string(f.Severity); sev != "" {
		entry["severity"] = sev
	}
	return entry
}

func summaryAny(m map[string]int64) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func severityRank(s policies.Severity) int {
	switch s {
	case policies.SeverityCritical:
		return 4
	case policies.SeverityHigh:
		return 3
	case policies.SeverityMedium:
		return 2
	case policies.SeverityLow:
		return 1
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

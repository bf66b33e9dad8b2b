package compliance

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tollgate-dev/tollgate/policies"
)

// Outcome is a result's verdict, with the values PolicyReports use.
type Outcome string

// The outcomes of the openreports.io and wgpolicyk8s.io APIs.
const (
	// OutcomePass: the resource meets the policy.
	OutcomePass Outcome = "pass"
	// OutcomeFail: the resource does not meet the policy.
	OutcomeFail Outcome = "fail"
	// OutcomeWarn: the resource does not meet a policy that is not scored.
	OutcomeWarn Outcome = "warn"
	// OutcomeError: the policy could not be evaluated on the resource.
	OutcomeError Outcome = "error"
	// OutcomeSkip: the policy was not applied; Tollgate writes skip for a
	// finding an exception waives, with the exception in the properties.
	OutcomeSkip Outcome = "skip"
)

// ParseOutcome reads an outcome as written in a PolicyReport.
func ParseOutcome(s string) (Outcome, error) {
	switch o := Outcome(s); o {
	case OutcomePass, OutcomeFail, OutcomeWarn, OutcomeError, OutcomeSkip:
		return o, nil
	}
	return "", fmt.Errorf("unknown result %q (want pass, fail, warn, error or skip)", s)
}

// Violation reports whether the outcome keeps a control from passing:
// fail, warn (requirements not met) and error (not evaluated, so not shown
// to hold).
func (o Outcome) Violation() bool {
	return o == OutcomeFail || o == OutcomeWarn || o == OutcomeError
}

// SourceTollgate is the source of Tollgate's own results. Other engines
// name themselves ("kyverno", "trivy-operator", "kubewarden", ...).
const SourceTollgate = "tollgate"

// Keys of a result's properties that Tollgate writes and reads back. All
// values are strings, as the PolicyReport APIs require.
const (
	// PropControls lists the framework controls the result evidences,
	// comma-separated framework:id pairs in the order of the policy's
	// metadata: "cis:5.2.2,nsa:pod-security/privileged,pss:baseline/privileged-containers".
	// Any engine may set it; the report then counts the result toward
	// those controls.
	PropControls = "controls"
	// PropRemediation says how to fix the resource.
	PropRemediation = "remediation"
	// PropPath is the offending field, e.g. spec.template.spec.containers[0].securityContext.privileged.
	PropPath = "path"
	// PropAction is the policy's effective action: enforce, warn or audit.
	PropAction = "action"
	// PropFile is where a manifest came from (file:line), in reports on
	// manifests.
	PropFile = "file"
	// PropException names the TollgateException ("namespace/name") that
	// waives the finding; PropExceptionReason, PropExceptionTicket,
	// PropExceptionApprover and PropExceptionExpires (RFC 3339) say why,
	// where it was agreed, who agreed and until when.
	PropException         = "exception"
	PropExceptionReason   = "exceptionReason"
	PropExceptionTicket   = "exceptionTicket"
	PropExceptionApprover = "exceptionApprover"
	PropExceptionExpires  = "exceptionExpires"
	// PropResourceSelector records a result's resourceSelector (read from
	// other engines' reports), rendered as label selector text.
	PropResourceSelector = "resourceSelector"
)

// Keys of the properties of a result about a scanned image (the audit
// writes them on every finding whose path is a container's image, and the
// findings of images-vulnerability-report carry them per image): the
// image and its digest, the scan's status, the vulnerabilities by
// severity (PropCountPrefix plus the lowercase severity: "criticalCount",
// named as trivy-operator's VulnerabilityReport summary names them), those
// with a fix, and the most severe ones. PropTeam is the workload's team
// (its ownership label, else its Namespace's), which the vulnerability
// section groups by.
const (
	PropImage           = "image"
	PropDigest          = "digest"
	PropScanStatus      = "scanStatus"
	PropCountSuffix     = "Count"
	PropFixableCount    = "fixableCount"
	PropVulnerabilities = "vulnerabilities"
	PropTeam            = "team"
)

// VulnerabilityReportPolicy is the library policy whose findings carry
// each vulnerable image's scan into Reports and the vulnerability section.
const VulnerabilityReportPolicy = "images-vulnerability-report"

// Annotations the audit sets on the Report objects it writes: when it
// scanned, and the versions that produced the results, so that the report
// can name them. AnnotationExamined (evidence.go) counts what it examined.
const (
	AnnotationScannedAt      = "tollgate.dev/scanned-at"
	AnnotationScannerVersion = "tollgate.dev/scanner-version"
	AnnotationLibraryVersion = "tollgate.dev/policy-library-version"
	// AnnotationCluster names the cluster whose audit wrote the report
	// (tollgate serve --cluster-name); AnnotationPolicySet the policy set
	// that judged (a digest, see policies.ModulesDigest).
	AnnotationCluster   = "tollgate.dev/cluster"
	AnnotationPolicySet = "tollgate.dev/policy-set"
)

// Resource identifies the object a result is about.
type Resource struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name,omitempty"`
	UID        string `json:"uid,omitempty"`
}

// String renders the resource as namespace/Kind/name (Kind/name when
// cluster-scoped), or "" for no resource.
func (r Resource) String() string {
	var parts []string
	for _, s := range []string{r.Namespace, r.Kind, r.Name} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "/")
}

// IsZero reports whether the resource names nothing.
func (r Resource) IsZero() bool { return r == Resource{} }

// ResourceOf identifies a Kubernetes object given as a JSON-shaped map.
func ResourceOf(obj map[string]any) Resource {
	meta, _ := obj["metadata"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	return Resource{
		APIVersion: str(obj, "apiVersion"), Kind: str(obj, "kind"),
		Namespace: str(meta, "namespace"), Name: str(meta, "name"), UID: str(meta, "uid"),
	}
}

// Result is one policy's verdict on one resource, from Tollgate or from
// another engine's PolicyReport.
type Result struct {
	// Source is the engine: "tollgate", "kyverno", "trivy-operator", ...
	Source string `json:"source"`
	// Policy and Rule identify what judged; Tollgate's policies have one
	// rule and leave Rule empty.
	Policy string `json:"policy"`
	Rule   string `json:"rule,omitempty"`
	// Category is the policy's category as another engine reports it.
	Category string `json:"category,omitempty"`
	// Resource is what was judged; zero when a result covers a selector.
	Resource Resource `json:"resource"`
	// Result is the verdict.
	Result   Outcome           `json:"result"`
	Severity policies.Severity `json:"severity,omitempty"`
	// Message says what is wrong (or what was checked), for a person.
	Message     string `json:"message,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	// Controls are the framework controls the result evidences, as the
	// policy declares them. The report also counts a Tollgate result
	// toward every control whose framework data lists its policy.
	Controls []policies.Control `json:"controls,omitempty"`
	// Exception is the exception that waives the finding, if any.
	Exception *policies.ExceptionRef `json:"exception,omitempty"`
	// Properties holds the other properties (path, action, file, and
	// whatever another engine records).
	Properties map[string]string `json:"properties,omitempty"`
	// Timestamp is when the result was found.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Cluster names the cluster the resource is in, in a report over
	// several clusters (BuildClusters); empty otherwise.
	Cluster string `json:"cluster,omitempty"`
}

// Waived reports whether an exception waives the result.
func (r *Result) Waived() bool { return r.Exception != nil }

// FromFinding is the result of an engine finding on a resource: fail, or
// skip with the exception when one waives it.
func FromFinding(f *policies.Finding, res Resource, at time.Time) Result {
	r := Result{
		Source: SourceTollgate, Policy: f.Policy, Resource: res, Result: OutcomeFail,
		Severity: f.Severity, Message: f.Message, Remediation: f.Remediation,
		Controls: slices.Clone(f.Controls), Timestamp: at,
	}
	props := map[string]string{}
	if f.Path != "" {
		props[PropPath] = f.Path
	}
	if f.Action != "" {
		props[PropAction] = string(f.Action)
	}
	if len(props) > 0 {
		r.Properties = props
	}
	if f.Exception != nil {
		x := *f.Exception
		r.Exception = &x
		r.Result = OutcomeSkip
	}
	return r
}

// PassResult is the result of a policy that applied to a resource and
// found nothing wrong.
func PassResult(m *policies.Metadata, res Resource, at time.Time) Result {
	return Result{
		Source: SourceTollgate, Policy: m.ID, Resource: res, Result: OutcomePass,
		Severity: m.Severity, Message: "passed: " + cmp.Or(m.Title, m.ID),
		Controls: slices.Clone(m.Controls), Timestamp: at,
	}
}

// FormatControls renders controls as PropControls holds them.
func FormatControls(cs []policies.Control) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

// ParseControls reads a PropControls value.
func ParseControls(s string) ([]policies.Control, error) {
	var out []policies.Control
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		fw, id, ok := strings.Cut(part, ":")
		if !ok || fw == "" || id == "" {
			return nil, fmt.Errorf("control %q: want framework:id", part)
		}
		out = append(out, policies.Control{Framework: fw, ID: id})
	}
	return out, nil
}

// validSeverity reports whether the PolicyReport APIs accept s.
func validSeverity(s policies.Severity) bool { return s.Rank() >= 0 }

// ReportResult is the entry of a PolicyReport's results[] for r, in the
// shape of openreports.io/v1alpha1 (and wgpolicyk8s.io/v1alpha2, which has
// the same results): source, policy, rule, category, result, severity,
// scored, message, resources, properties, timestamp. The framework controls
// go in properties[PropControls], the remediation in
// properties[PropRemediation], and a waiving exception in the
// properties[PropException...] keys. The value holds only map[string]any,
// []any, string, bool and int64, so it can be set into an
// unstructured.Unstructured as is. r.Result must be one of the five
// outcomes; an unknown severity is left out.
func ReportResult(r Result) map[string]any {
	out := map[string]any{
		"source": r.Source,
		"policy": r.Policy,
		"result": string(r.Result),
		"scored": r.Result != OutcomeWarn,
	}
	if r.Rule != "" {
		out["rule"] = r.Rule
	}
	if r.Category != "" {
		out["category"] = r.Category
	}
	if validSeverity(r.Severity) {
		out["severity"] = string(r.Severity)
	}
	if r.Message != "" {
		out["message"] = r.Message
	}
	if !r.Resource.IsZero() {
		ref := map[string]any{}
		for k, v := range map[string]string{
			"apiVersion": r.Resource.APIVersion, "kind": r.Resource.Kind,
			"namespace": r.Resource.Namespace, "name": r.Resource.Name, "uid": r.Resource.UID,
		} {
			if v != "" {
				ref[k] = v
			}
		}
		out["resources"] = []any{ref}
	}
	props := map[string]any{}
	for k, v := range r.Properties {
		props[k] = v
	}
	if len(r.Controls) > 0 {
		props[PropControls] = FormatControls(r.Controls)
	}
	if r.Remediation != "" {
		props[PropRemediation] = r.Remediation
	}
	if x := r.Exception; x != nil {
		props[PropException] = x.Namespace + "/" + x.Name
		props[PropExceptionReason] = x.Reason
		props[PropExceptionApprover] = x.Approver
		if x.Ticket != "" {
			props[PropExceptionTicket] = x.Ticket
		}
		if !x.Expires.IsZero() {
			props[PropExceptionExpires] = x.Expires.UTC().Format(time.RFC3339)
		}
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	if !r.Timestamp.IsZero() {
		out["timestamp"] = map[string]any{"seconds": r.Timestamp.Unix(), "nanos": int64(r.Timestamp.Nanosecond())}
	}
	return out
}

// ReportResults is ReportResult of each result, as the []any a
// PolicyReport's results field holds.
func ReportResults(rs []Result) []any {
	out := make([]any, len(rs))
	for i := range rs {
		out[i] = ReportResult(rs[i])
	}
	return out
}

// Summary counts results by outcome, as a PolicyReport's summary does.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// Summarize counts results by outcome. The audit counts every result it
// found, including those it leaves out of a Report that reached its size
// cap, so the summary stays true when the results list is cut.
func Summarize(rs []Result) Summary {
	var s Summary
	for i := range rs {
		s.Add(rs[i].Result)
	}
	return s
}

// Add counts one more result.
func (s *Summary) Add(o Outcome) {
	switch o {
	case OutcomePass:
		s.Pass++
	case OutcomeFail:
		s.Fail++
	case OutcomeWarn:
		s.Warn++
	case OutcomeError:
		s.Error++
	case OutcomeSkip:
		s.Skip++
	}
}

// Total is the number of results counted.
func (s Summary) Total() int { return s.Pass + s.Fail + s.Warn + s.Error + s.Skip }

// Object is the summary as a PolicyReport's summary field holds it
// (int64 values, ready for unstructured.Unstructured).
func (s Summary) Object() map[string]any {
	return map[string]any{
		"pass": int64(s.Pass), "fail": int64(s.Fail), "warn": int64(s.Warn),
		"error": int64(s.Error), "skip": int64(s.Skip),
	}
}

// Report API groups and kinds FromReport reads.
const (
	OpenReportsGroup   = "openreports.io"
	OpenReportsVersion = "v1alpha1"
	WGPolicyGroup      = "wgpolicyk8s.io"
	WGPolicyVersion    = "v1alpha2"
)

var reportKinds = map[string][]string{
	OpenReportsGroup: {"Report", "ClusterReport"},
	WGPolicyGroup:    {"PolicyReport", "ClusterPolicyReport"},
}

// ReportObjectMeta is what FromReport tells of the report object itself.
type ReportObjectMeta struct {
	// Source is the report's own source (or that of its managed-by label).
	Source string
	// ScannerVersion and LibraryVersion come from the annotations the
	// audit sets (AnnotationScannerVersion, AnnotationLibraryVersion).
	ScannerVersion, LibraryVersion string
	// Cluster and PolicySet come from AnnotationCluster and
	// AnnotationPolicySet: the cluster that wrote the report and the
	// policy set that judged its results; empty when absent.
	Cluster, PolicySet string
	// ScannedAt is AnnotationScannedAt's time, zero when absent.
	ScannedAt time.Time
	// Summary is the report's own summary, nil when it has none. It counts
	// what the results may leave out: passes, and results over a cap.
	Summary *Summary
	// Examined is what the audit examined in the report's namespace ("" for
	// a cluster report), read from AnnotationExamined; ExaminedRecorded
	// says that the annotation was present and read. A report without it
	// (an older scanner, another engine) leaves the evidence unknown.
	Examined         []Examined
	ExaminedRecorded bool
}

// FromReport reads the results of an openreports.io/v1alpha1 Report or
// ClusterReport, or of a wgpolicyk8s.io/v1alpha2 PolicyReport or
// ClusterPolicyReport, given as a JSON-shaped map (an unstructured object's
// content). A result naming several resources becomes one Result per
// resource; one naming none is about the report's scope. Each result's
// source is its own, else the report's, else the app.kubernetes.io/managed-by
// label's, else "unknown". The properties Tollgate writes (PropControls,
// PropRemediation, PropException...) become fields again.
//
// Malformed entries are left out and reported in the error, each with the
// field path, while the others are returned: one bad entry does not hide a
// report. An unreadable AnnotationExamined is reported the same way,
// wrapping ErrExaminedAnnotation: the report's evidence is left out
// (ExaminedRecorded false), its results are still read.
func FromReport(obj map[string]any) ([]Result, ReportObjectMeta, error) {
	var meta ReportObjectMeta
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	namespace, _ := md["namespace"].(string)
	if namespace != "" {
		name = namespace + "/" + name
	}
	what := fmt.Sprintf("%s %s", kind, name)
	if !slices.Contains(reportKinds[group], kind) {
		return nil, meta, fmt.Errorf("%s (%s): not a Report, ClusterReport, PolicyReport or ClusterPolicyReport", what, apiVersion)
	}
	labels, _ := md["labels"].(map[string]any)
	annotations, _ := md["annotations"].(map[string]any)
	meta.ScannerVersion, _ = annotations[AnnotationScannerVersion].(string)
	meta.LibraryVersion, _ = annotations[AnnotationLibraryVersion].(string)
	managedBy, _ := labels["app.kubernetes.io/managed-by"].(string)
	reportSource, _ := obj["source"].(string)
	meta.Source = cmp.Or(reportSource, managedBy)
	if s, _ := annotations[AnnotationScannedAt].(string); s != "" {
		meta.ScannedAt, _ = time.Parse(time.RFC3339, s)
	}
	if sm, ok := obj["summary"].(map[string]any); ok {
		meta.Summary = &Summary{
			Pass: int(toInt64(sm["pass"])), Fail: int(toInt64(sm["fail"])), Warn: int(toInt64(sm["warn"])),
			Error: int(toInt64(sm["error"])), Skip: int(toInt64(sm["skip"])),
		}
	}

	var errs []error
	var err error
	if meta.Cluster, err = clusterAnnotation(annotations[AnnotationCluster]); err != nil {
		errs = append(errs, fmt.Errorf("%s: annotation %s: %w", what, AnnotationCluster, err))
	}
	if meta.PolicySet, err = policySetAnnotation(annotations[AnnotationPolicySet]); err != nil {
		errs = append(errs, fmt.Errorf("%s: annotation %s: %w", what, AnnotationPolicySet, err))
	}
	if v, ok := annotations[AnnotationExamined]; ok {
		s, isString := v.(string)
		var err error
		if !isString {
			err = fmt.Errorf("want a string, got %s", jsonType(v))
		} else {
			meta.Examined, err = ParseExaminedAnnotation(namespace, s)
		}
		if err != nil {
			meta.Examined = nil
			errs = append(errs, fmt.Errorf("%s: %w: %w", what, ErrExaminedAnnotation, err))
		} else {
			meta.ExaminedRecorded = true
		}
	}

	var scope Resource
	if s, ok := obj["scope"].(map[string]any); ok {
		scope = resourceRef(s)
	}
	raw, ok := obj["results"]
	if !ok || raw == nil {
		return nil, meta, errors.Join(errs...)
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, meta, errors.Join(append(errs, fmt.Errorf("%s: results: not a list", what))...)
	}
	var out []Result
	for i, item := range list {
		rs, err := resultsOf(item, scope, meta.Source)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: results[%d]%w", what, i, err))
			continue
		}
		out = append(out, rs...)
	}
	return out, meta, errors.Join(errs...)
}

// digestPattern is an OCI content digest: algorithm:encoded.
var digestPattern = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)

// maxAnnotationName bounds the cluster name and policy-set digest read
// from a report: longer is not something Tollgate wrote.
const maxAnnotationName = 256

// clusterAnnotation reads AnnotationCluster ("" when absent): a name
// without control characters.
func clusterAnnotation(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	switch {
	case !ok:
		return "", fmt.Errorf("want a string, got %s", jsonType(v))
	case len(s) > maxAnnotationName:
		return "", fmt.Errorf("%d bytes, longer than a cluster name (at most %d)", len(s), maxAnnotationName)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", fmt.Errorf("%q holds control characters", s)
	}
	return s, nil
}

// policySetAnnotation reads AnnotationPolicySet ("" when absent): a
// digest such as sha256:<hex>.
func policySetAnnotation(v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	switch {
	case !ok:
		return "", fmt.Errorf("want a string, got %s", jsonType(v))
	case len(s) > maxAnnotationName:
		return "", fmt.Errorf("%d bytes, longer than a digest (at most %d)", len(s), maxAnnotationName)
	case !digestPattern.MatchString(s):
		return "", fmt.Errorf("%q is not a digest (want algorithm:hex, as sha256:3f2a…)", s)
	}
	return s, nil
}

// fieldError is an error about a field below a results[] entry; its text
// starts with the field path so that it reads on from "results[3]".
type fieldError struct{ path, msg string }

func (e *fieldError) Error() string {
	if e.path == "" {
		return ": " + e.msg
	}
	return "." + e.path + ": " + e.msg
}

func resultsOf(item any, scope Resource, reportSource string) ([]Result, error) {
	m, ok := item.(map[string]any)
	if !ok {
		return nil, &fieldError{"", "not an object"}
	}
	str := func(k string) (string, error) {
		v, ok := m[k]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", &fieldError{k, fmt.Sprintf("want a string, got %T", v)}
		}
		return s, nil
	}
	var r Result
	var err error
	fields := []struct {
		key string
		dst *string
	}{{"policy", &r.Policy}, {"rule", &r.Rule}, {"category", &r.Category}, {"message", &r.Message}, {"source", &r.Source}}
	for _, f := range fields {
		if *f.dst, err = str(f.key); err != nil {
			return nil, err
		}
	}
	if r.Policy == "" {
		return nil, &fieldError{"policy", "required"}
	}
	r.Source = cmp.Or(r.Source, reportSource, "unknown")
	outcome, err := str("result")
	if err != nil {
		return nil, err
	}
	if r.Result, err = ParseOutcome(outcome); err != nil {
		return nil, &fieldError{"result", err.Error()}
	}
	sev, err := str("severity")
	if err != nil {
		return nil, err
	}
	if sev != "" {
		if r.Severity, err = policies.ParseSeverity(sev); err != nil {
			return nil, &fieldError{"severity", err.Error()}
		}
	}
	if ts, ok := m["timestamp"].(map[string]any); ok {
		sec, nanos := toInt64(ts["seconds"]), toInt64(ts["nanos"])
		if sec != 0 || nanos != 0 {
			r.Timestamp = time.Unix(sec, nanos).UTC()
		}
	}
	if p, ok := m["properties"]; ok && p != nil {
		pm, ok := p.(map[string]any)
		if !ok {
			return nil, &fieldError{"properties", "not an object"}
		}
		props := make(map[string]string, len(pm))
		for k, v := range pm {
			s, ok := v.(string)
			if !ok {
				return nil, &fieldError{"properties." + k, fmt.Sprintf("want a string, got %T", v)}
			}
			props[k] = s
		}
		if err := r.takeProperties(props); err != nil {
			return nil, err
		}
	}
	if sel, ok := m["resourceSelector"].(map[string]any); ok {
		if r.Properties == nil {
			r.Properties = map[string]string{}
		}
		r.Properties[PropResourceSelector] = selectorText(sel)
	}
	var resources []Resource
	if v, ok := m["resources"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return nil, &fieldError{"resources", "not a list"}
		}
		for j, item := range list {
			ref, ok := item.(map[string]any)
			if !ok {
				return nil, &fieldError{fmt.Sprintf("resources[%d]", j), "not an object"}
			}
			resources = append(resources, resourceRef(ref))
		}
	}
	if len(resources) == 0 {
		resources = []Resource{scope}
	}
	out := make([]Result, len(resources))
	for j, res := range resources {
		out[j] = r
		out[j].Resource = res
		if j > 0 {
			out[j].Properties = maps.Clone(r.Properties)
			out[j].Controls = slices.Clone(r.Controls)
		}
	}
	return out, nil
}

// takeProperties moves the properties Tollgate defines into fields and
// keeps the rest.
func (r *Result) takeProperties(props map[string]string) error {
	if s, ok := props[PropControls]; ok {
		cs, err := ParseControls(s)
		if err != nil {
			return &fieldError{"properties." + PropControls, err.Error()}
		}
		r.Controls = cs
		delete(props, PropControls)
	}
	if s, ok := props[PropRemediation]; ok {
		r.Remediation = s
		delete(props, PropRemediation)
	}
	if ref, ok := props[PropException]; ok {
		ns, name, _ := strings.Cut(ref, "/")
		x := &policies.ExceptionRef{Namespace: ns, Name: name,
			Reason: props[PropExceptionReason], Ticket: props[PropExceptionTicket], Approver: props[PropExceptionApprover]}
		if s := props[PropExceptionExpires]; s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return &fieldError{"properties." + PropExceptionExpires, "want an RFC 3339 time: " + err.Error()}
			}
			x.Expires = t.UTC()
		}
		r.Exception = x
		for _, k := range []string{PropException, PropExceptionReason, PropExceptionTicket, PropExceptionApprover, PropExceptionExpires} {
			delete(props, k)
		}
	}
	if len(props) > 0 {
		r.Properties = props
	}
	return nil
}

func resourceRef(m map[string]any) Resource {
	str := func(k string) string { s, _ := m[k].(string); return s }
	return Resource{APIVersion: str("apiVersion"), Kind: str("kind"), Namespace: str("namespace"), Name: str("name"), UID: str("uid")}
}

// selectorText renders a label selector as kubectl shows one.
func selectorText(sel map[string]any) string {
	var parts []string
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		for _, k := range slices.Sorted(maps.Keys(ml)) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, ml[k]))
		}
	}
	if exprs, ok := sel["matchExpressions"].([]any); ok {
		for _, e := range exprs {
			em, _ := e.(map[string]any)
			var vals []string
			if vs, ok := em["values"].([]any); ok {
				for _, v := range vs {
					vals = append(vals, fmt.Sprint(v))
				}
			}
			parts = append(parts, fmt.Sprintf("%v %v (%s)", em["key"], em["operator"], strings.Join(vals, ",")))
		}
	}
	return strings.Join(parts, ",")
}

// toInt64 reads a JSON number however it was decoded; anything else is 0.
func toInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	case string:
		i, _ := strconv.ParseInt(n, 10, 64)
		return i
	}
	return 0
}

// SortResults orders results by source, policy, resource and message, the
// order every rendering shows them in.
func SortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := &rs[i], &rs[j]
		return cmp.Or(
			cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Policy, b.Policy),
			cmp.Compare(a.Cluster, b.Cluster),
			cmp.Compare(a.Resource.Namespace, b.Resource.Namespace),
			cmp.Compare(a.Resource.Kind, b.Resource.Kind),
			cmp.Compare(a.Resource.Name, b.Resource.Name),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Message, b.Message),
		) < 0
	})
}

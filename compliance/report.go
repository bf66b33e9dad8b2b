package compliance

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
)

// Cluster identifies the cluster a report is about.
type Cluster struct {
	Name string `json:"name"`
	// Server is the API server URL.
	Server            string `json:"server"`
	KubernetesVersion string `json:"kubernetesVersion"`
	// UID is the UID of the kube-system namespace: it names the cluster
	// across renames and kubeconfigs.
	UID string `json:"uid"`
	// PolicySets are the policy sets (digests) the cluster's Tollgate
	// Reports name (AnnotationPolicySet), sorted: one, unless the set
	// changed while the audit wrote them.
	PolicySets []string `json:"policySets,omitempty"`
	// Unreachable says why the cluster could not be read (tollgate
	// report --allow-missing); its results are not in the report.
	Unreachable string `json:"unreachable,omitempty"`
}

// Versions names what produced a report.
type Versions struct {
	// Tollgate is the version of the binary that wrote the report.
	Tollgate string `json:"tollgate"`
	// Scanner is the version of the audit that wrote the results (the
	// reporting binary when it evaluated manifests itself).
	Scanner string `json:"scanner"`
	// PolicyLibrary is the built-in library's version; PolicyDigest a
	// digest of every policy module evaluated, built-in or not.
	PolicyLibrary string `json:"policyLibrary"`
	PolicyDigest  string `json:"policyDigest,omitempty"`
	// PodSecurity is the Pod Security Standards version the policies
	// judged by (the config's podSecurity.version: "latest" or
	// "v1.<minor>"); the pss framework's version names it.
	PodSecurity string `json:"podSecurity,omitempty"`
}

// Input is what a report is built from.
type Input struct {
	// Title defaults to "Compliance report — <cluster name>".
	Title string
	// GeneratedAt is the time the report states; it also decides which
	// exceptions are in force.
	GeneratedAt time.Time
	// Cluster is set for a report on a cluster; Manifests lists the paths
	// of a report on manifests.
	Cluster   *Cluster
	Manifests []string
	Versions  Versions
	// Frameworks are the frameworks reported on, in order.
	Frameworks []Framework
	// Results are every result gathered, Tollgate's and other engines'.
	Results []Result
	// Counted are the results each source counted, by source, when more
	// than Results lists: PolicyReport summaries count the passes their
	// results leave out, and the results a report had to cut. A source
	// without an entry is counted from Results.
	Counted map[string]Summary
	// Objects is the number of objects evaluated, when known (a report on
	// manifests).
	Objects int
	// Examined counts the objects each policy judged, by namespace and
	// kind: read from the audit's Reports (AnnotationExamined) or counted
	// while evaluating manifests. Results with OutcomePass may be given
	// beside it: they name objects that passed, shown as examples.
	Examined []Examined
	// EvidenceKnown says that Examined is filled: a control whose policies
	// examined nothing is then MANUAL ("not evidenced"), not PASSED. When
	// false (Reports of a scanner that does not record what it examined)
	// the controls carry no evidence and the report says so in a note.
	EvidenceKnown bool
	// Exceptions are the exceptions in force (honoured and unexpired).
	Exceptions []policies.Exception
	// Denials summarises the decision log over the period; nil when no log
	// was read.
	Denials *Denials
	// Notes are problems met while gathering (unreadable Reports, APIs not
	// installed), shown in the report.
	Notes []string

	// exceptionClusters names the cluster of each of Exceptions in a
	// report over several clusters (BuildClusters): exceptions of the
	// same name in two clusters are two exceptions.
	exceptionClusters []string
}

// Verdict is a control's outcome.
type Verdict string

// The verdicts. A control passes when no result of the policies that
// evidence it fails; findings waived by an exception in force make it
// pass with exceptions; a control no policy evidences is manual. When the
// report knows what was examined (Input.EvidenceKnown), a control whose
// policies examined no object and found nothing is manual too, with the
// reason "not evidenced: ...": nothing stands behind a pass.
const (
	VerdictPassed               Verdict = "passed"
	VerdictPassedWithExceptions Verdict = "passed-with-exceptions"
	VerdictFailed               Verdict = "failed"
	VerdictManual               Verdict = "manual"
)

// Report is a compliance report: every rendering shows the same model.
type Report struct {
	Title       string    `json:"title"`
	GeneratedAt time.Time `json:"generatedAt"`
	Cluster     *Cluster  `json:"cluster,omitempty"`
	Manifests   []string  `json:"manifests,omitempty"`
	Versions    Versions  `json:"versions"`
	// Objects is the number of objects evaluated, when known (manifests).
	Objects int `json:"objects,omitempty"`
	// Checks counts Tollgate's policy checks: one per object and policy
	// that applied to it, passed or not.
	Checks int `json:"checks"`
	// Frameworks hold the summary and the controls of each framework.
	Frameworks []FrameworkResult `json:"frameworks"`
	// Sources counts results by engine, Tollgate first.
	Sources []SourceSummary `json:"sources"`
	// Exceptions are the exceptions in force, with what they waive.
	Exceptions []ExceptionInForce `json:"exceptions"`
	// Denials are the admission decisions of the period, if a decision
	// log was read.
	Denials *Denials `json:"denials,omitempty"`
	// Vulnerabilities is the image scans' section, per namespace and
	// team; nil when no result is about an image scan.
	Vulnerabilities *VulnerabilitySection `json:"vulnerabilities,omitempty"`
	// Deployments and ProfileChanges are read from the decision log:
	// deployment frequency, and who moved which namespace to which
	// profile; nil when no log was read.
	Deployments    *DeploymentSection    `json:"deployments,omitempty"`
	ProfileChanges *ProfileChangeSection `json:"profileChanges,omitempty"`
	// Clusters is the per-cluster breakdown of a report over several
	// clusters (BuildClusters), in the order given; nil otherwise.
	Clusters []ClusterBreakdown `json:"clusters,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// frameworkVersion is the version a report shows for a framework: the data
// file's, except for the Pod Security Standards when the version the
// policies judged by is known: "Kubernetes v1.30 (Baseline and
// Restricted)", or for latest the release it stands for, "Kubernetes v1.36
// (latest; Baseline and Restricted)".
func frameworkVersion(fw *Framework, v Versions) string {
	switch {
	case fw.ID != "pss" || v.PodSecurity == "":
		return fw.Version
	case v.PodSecurity == "latest":
		return "Kubernetes " + policies.PodSecurityLatest + " (latest; Baseline and Restricted)"
	default:
		return "Kubernetes " + v.PodSecurity + " (Baseline and Restricted)"
	}
}

// FailedControls counts the failed controls of every framework.
func (r *Report) FailedControls() int {
	n := 0
	for i := range r.Frameworks {
		n += r.Frameworks[i].Summary.Failed
	}
	return n
}

// FrameworkResult is one framework's part of a report.
type FrameworkResult struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Version     string           `json:"version"`
	URL         string           `json:"url,omitempty"`
	Description string           `json:"description,omitempty"`
	Summary     FrameworkSummary `json:"summary"`
	Controls    []ControlResult  `json:"controls"`
}

// FrameworkSummary counts a framework's controls by verdict.
type FrameworkSummary struct {
	Controls             int `json:"controls"`
	Passed               int `json:"passed"`
	PassedWithExceptions int `json:"passedWithExceptions"`
	Failed               int `json:"failed"`
	Manual               int `json:"manual"`
	// Automated counts the controls whose verdict is not manual;
	// AutomatedShare is Automated / Controls (nil without controls).
	Automated      int      `json:"automated"`
	AutomatedShare *float64 `json:"automatedShare"`
	// Score is passed / (passed + failed), controls passed with
	// exceptions counting as passed and manual ones not at all; nil when
	// no control is scored.
	Score *float64 `json:"score"`
}

// ControlResult is one control's verdict with its evidence.
type ControlResult struct {
	ID          string   `json:"id"`
	Group       string   `json:"group,omitempty"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
	Policies    []string `json:"policies,omitempty"`
	Verdict     Verdict  `json:"verdict"`
	// Reason says why a manual control is reviewed by hand: the
	// framework's reason, or why its policies did not evidence it.
	Reason string `json:"reason,omitempty"`
	// Evidence is what the control's policies examined; nil for a manual
	// control and when the report does not know (Input.EvidenceKnown).
	Evidence *Evidence `json:"evidence,omitempty"`
	// Failures are the results that fail the control; Waived those an
	// exception waives.
	Failures []Result `json:"failures"`
	Waived   []Result `json:"waived"`
	// Denied and Warned count the admission requests of the period denied
	// or warned about by the control's policies.
	Denied int `json:"denied"`
	Warned int `json:"warned"`
	// Clusters is the control's verdict in each cluster of a report over
	// several clusters; the control fails if it fails in any of them.
	Clusters []ClusterVerdict `json:"clusters,omitempty"`
}

// SourceSummary counts one engine's results.
type SourceSummary struct {
	Source  string  `json:"source"`
	Summary Summary `json:"summary"`
	// Results are the results other than pass, for engines other than
	// Tollgate (whose results are shown per control).
	Results []Result `json:"results,omitempty"`
}

// ExceptionInForce is an exception in force, with what it waives in this
// report.
type ExceptionInForce struct {
	policies.Exception
	// Waived counts the results it waives; Controls the controls those
	// results count toward.
	Waived   int      `json:"waived"`
	Controls []string `json:"controls,omitempty"`
	// Cluster is the exception's cluster in a report over several
	// clusters.
	Cluster string `json:"cluster,omitempty"`
}

// Build assembles the report. It does not change in.
func Build(in Input) *Report {
	results := slices.Clone(in.Results)
	SortResults(results)
	r := &Report{
		Title: in.Title, GeneratedAt: in.GeneratedAt.UTC(), Cluster: in.Cluster,
		Manifests: in.Manifests, Versions: in.Versions, Denials: mapDenials(in.Denials, in.Frameworks),
		Notes: slices.Clone(in.Notes), Frameworks: []FrameworkResult{}, Exceptions: []ExceptionInForce{},
	}
	if r.Title == "" {
		switch {
		case in.Cluster != nil && in.Cluster.Name != "":
			r.Title = "Compliance report — " + in.Cluster.Name
		case len(in.Manifests) > 0:
			r.Title = "Compliance report — manifests"
		default:
			r.Title = "Compliance report"
		}
	}

	bySource := map[string]*SourceSummary{}
	for i := range results {
		res := &results[i]
		s := bySource[res.Source]
		if s == nil {
			s = &SourceSummary{Source: res.Source}
			bySource[res.Source] = s
		}
		s.Summary.Add(res.Result)
		if res.Source != SourceTollgate && res.Result != OutcomePass {
			s.Results = append(s.Results, *res)
		}
	}
	for source, counted := range in.Counted {
		s := bySource[source]
		if s == nil {
			s = &SourceSummary{Source: source}
			bySource[source] = s
		}
		s.Summary = counted
	}
	r.Objects = in.Objects
	if s := bySource[SourceTollgate]; s != nil {
		r.Checks = s.Summary.Total()
	}
	for _, s := range bySource {
		r.Sources = append(r.Sources, *s)
	}
	slices.SortFunc(r.Sources, func(a, b SourceSummary) int {
		return cmp.Or(-cmp.Compare(boolInt(a.Source == SourceTollgate), boolInt(b.Source == SourceTollgate)), cmp.Compare(a.Source, b.Source))
	})
	if r.Sources == nil {
		r.Sources = []SourceSummary{}
	}

	// A waived result may name its exception only (the audit writes the
	// name): complete it from the exceptions in force.
	known := map[string]*policies.Exception{}
	for i := range in.Exceptions {
		x := &in.Exceptions[i]
		known[exceptionKey(in.exceptionCluster(i), x.Namespace, x.Name)] = x
	}
	for i := range results {
		ref := results[i].Exception
		if ref == nil {
			continue
		}
		if x := known[exceptionKey(results[i].Cluster, ref.Namespace, ref.Name)]; x != nil {
			results[i].Exception = &policies.ExceptionRef{Namespace: x.Namespace, Name: x.Name,
				Reason: cmp.Or(ref.Reason, x.Reason), Ticket: cmp.Or(ref.Ticket, x.Ticket),
				Approver: cmp.Or(ref.Approver, x.Approver), Expires: cmp.Or(ref.Expires, x.Expires)}
		}
	}

	waivedBy := map[string]*ExceptionInForce{}
	for i, x := range in.Exceptions {
		e := &ExceptionInForce{Exception: x, Cluster: in.exceptionCluster(i)}
		e.Policies = slices.Clone(x.Policies)
		waivedBy[exceptionKey(e.Cluster, x.Namespace, x.Name)] = e
	}

	var examined *examinedIndex
	if in.EvidenceKnown {
		examined = newExaminedIndex(in.Examined, results)
	} else if len(in.Frameworks) > 0 {
		r.Notes = append(r.Notes, evidenceUnavailableNote)
	}
	for i := range in.Frameworks {
		fw := &in.Frameworks[i]
		fr := FrameworkResult{ID: fw.ID, Name: fw.Name, Version: frameworkVersion(fw, in.Versions), URL: fw.URL, Description: fw.Description, Controls: []ControlResult{}}
		for j := range fw.Controls {
			c := &fw.Controls[j]
			cr := buildControl(fw.ID, c, results, in.Denials, examined)
			for k := range cr.Waived {
				ref := cr.Waived[k].Exception
				key := exceptionKey(cr.Waived[k].Cluster, ref.Namespace, ref.Name)
				e := waivedBy[key]
				if e == nil {
					// Waived in a Report by an exception no longer listed:
					// still show who approved it.
					e = &ExceptionInForce{Cluster: cr.Waived[k].Cluster, Exception: policies.Exception{
						Namespace: ref.Namespace, Name: ref.Name, Reason: ref.Reason,
						Ticket: ref.Ticket, Approver: ref.Approver, Expires: ref.Expires,
					}}
					waivedBy[key] = e
				}
				id := fw.ID + ":" + c.ID
				if !slices.Contains(e.Controls, id) {
					e.Controls = append(e.Controls, id)
				}
			}
			fr.Summary.Controls++
			switch cr.Verdict {
			case VerdictPassed:
				fr.Summary.Passed++
			case VerdictPassedWithExceptions:
				fr.Summary.PassedWithExceptions++
			case VerdictFailed:
				fr.Summary.Failed++
			case VerdictManual:
				fr.Summary.Manual++
			}
			if cr.Verdict != VerdictManual {
				fr.Summary.Automated++
			}
			fr.Controls = append(fr.Controls, cr)
		}
		s := &fr.Summary
		if scored := s.Passed + s.PassedWithExceptions + s.Failed; scored > 0 {
			score := math.Round(float64(s.Passed+s.PassedWithExceptions)/float64(scored)*1000) / 1000
			s.Score = &score
		}
		if s.Controls > 0 {
			share := math.Round(float64(s.Automated)/float64(s.Controls)*1000) / 1000
			s.AutomatedShare = &share
		}
		r.Frameworks = append(r.Frameworks, fr)
	}

	r.Vulnerabilities = buildVulnerabilities(results, in.Frameworks)
	r.Deployments = buildDeployments(in.Denials)
	r.ProfileChanges = buildProfileChanges(in.Denials)

	// Count each waived result once, whatever the controls it counts for.
	for i := range results {
		if x := results[i].Exception; x != nil {
			key := exceptionKey(results[i].Cluster, x.Namespace, x.Name)
			if e := waivedBy[key]; e != nil {
				e.Waived++
			} else {
				waivedBy[key] = &ExceptionInForce{Waived: 1, Cluster: results[i].Cluster, Exception: policies.Exception{
					Namespace: x.Namespace, Name: x.Name, Reason: x.Reason,
					Ticket: x.Ticket, Approver: x.Approver, Expires: x.Expires,
				}}
			}
		}
	}
	for _, e := range waivedBy {
		slices.Sort(e.Controls)
		r.Exceptions = append(r.Exceptions, *e)
	}
	slices.SortFunc(r.Exceptions, func(a, b ExceptionInForce) int {
		return cmp.Or(cmp.Compare(a.Cluster, b.Cluster), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return r
}

// exceptionCluster is the cluster of the i-th exception ("" in a report
// on one cluster).
func (in *Input) exceptionCluster(i int) string {
	if i < len(in.exceptionClusters) {
		return in.exceptionClusters[i]
	}
	return ""
}

// exceptionKey identifies an exception: its cluster, namespace and name.
func exceptionKey(cluster, namespace, name string) string {
	return cluster + "\x00" + namespace + "/" + name
}

// mapDenials copies the denial summary with each policy's controls
// completed from the framework data (image-policy/* findings declare
// none, for instance).
func mapDenials(d *Denials, fws []Framework) *Denials {
	if d == nil {
		return nil
	}
	out := *d
	out.ByPolicy = slices.Clone(d.ByPolicy)
	for i := range out.ByPolicy {
		p := &out.ByPolicy[i]
		p.Controls = ControlsOf(fws, p.Policy, p.Controls)
	}
	return &out
}

// buildControl decides a control's verdict; examined is nil when the
// report does not know what was examined.
func buildControl(fw string, c *Control, results []Result, denials *Denials, examined *examinedIndex) ControlResult {
	cr := ControlResult{
		ID: c.ID, Group: c.Group, Title: c.Title, Description: c.Description,
		Remediation: c.Remediation, Policies: c.Policies,
		Failures: []Result{}, Waived: []Result{},
	}
	if denials != nil {
		for i := range denials.ByPolicy {
			p := &denials.ByPolicy[i]
			covered := c.Evidences(p.Policy) || slices.Contains(p.Controls, policies.Control{Framework: fw, ID: c.ID})
			if covered {
				cr.Denied += p.Denied
				cr.Warned += p.Warned
			}
		}
	}
	for i := range results {
		r := &results[i]
		if !c.Covers(fw, r) {
			continue
		}
		switch {
		case r.Waived() && (r.Result == OutcomeSkip || r.Result.Violation()):
			cr.Waived = append(cr.Waived, *r)
		case r.Result.Violation():
			cr.Failures = append(cr.Failures, *r)
		}
	}
	if c.Manual {
		// Results that name a manual control (another engine's RBAC
		// check, say) are shown for the review, but never decide it.
		cr.Verdict = VerdictManual
		cr.Reason = c.Reason
		return cr
	}
	if examined != nil {
		cr.Evidence = examined.evidence(c, &cr)
		if cr.Evidence.Examined == 0 && len(cr.Failures) == 0 && len(cr.Waived) == 0 {
			cr.Verdict = VerdictManual
			cr.Reason = notEvidencedReason(c)
			cr.Evidence = nil
			return cr
		}
	}
	switch {
	case len(cr.Failures) > 0:
		cr.Verdict = VerdictFailed
	case len(cr.Waived) > 0:
		cr.Verdict = VerdictPassedWithExceptions
	default:
		cr.Verdict = VerdictPassed
	}
	return cr
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Label is the verdict as reports print it: PASSED, PASSED WITH
// EXCEPTIONS, FAILED, MANUAL.
func (v Verdict) Label() string {
	return strings.ToUpper(strings.ReplaceAll(string(v), "-", " "))
}

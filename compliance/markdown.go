package compliance

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxListed bounds the rows a text rendering lists per table (the JSON
// rendering keeps everything); the rest is counted.
const maxListed = 100

// md escapes text for a Markdown table cell or paragraph.
func md(s string) string {
	r := strings.NewReplacer("|", `\|`, "\r\n", " ", "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`, "`", "'", "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

// code renders s as inline code (for ids and paths).
func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "`", "'") + "`"
}

func writeMarkdown(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }

	p("# %s\n\n", md(r.Title))
	p("| | |\n|---|---|\n")
	if c := r.Cluster; c != nil {
		p("| Cluster | %s |\n", md(c.Name))
		p("| API server | %s |\n", md(c.Server))
		p("| Kubernetes version | %s |\n", md(c.KubernetesVersion))
		p("| Cluster UID (kube-system) | %s |\n", code(c.UID))
		if len(c.PolicySets) > 0 {
			p("| Policy set | %s |\n", codeList(c.PolicySets))
		}
	}
	if len(r.Clusters) > 0 {
		names := make([]string, len(r.Clusters))
		for i := range r.Clusters {
			names[i] = md(r.Clusters[i].Cluster.Name)
		}
		p("| Clusters | %s (see Clusters) |\n", strings.Join(names, ", "))
	}
	if len(r.Manifests) > 0 {
		p("| Manifests | %s |\n", md(strings.Join(r.Manifests, ", ")))
	}
	p("| Generated | %s |\n", humanTime(r.GeneratedAt))
	if d := r.Denials; d != nil {
		p("| Admission period | %s – %s |\n", humanTime(d.From), humanTime(d.To))
	}
	if r.Versions.Scanner == "" || r.Versions.Scanner == r.Versions.Tollgate {
		p("| Tollgate | %s |\n", md(r.Versions.Tollgate))
	} else {
		p("| Tollgate | %s (scanner %s) |\n", md(r.Versions.Tollgate), md(r.Versions.Scanner))
	}
	lib := md(r.Versions.PolicyLibrary)
	if r.Versions.PolicyDigest != "" {
		lib += " (" + code(r.Versions.PolicyDigest) + ")"
	}
	p("| Policy library | %s |\n", lib)
	if r.Objects > 0 {
		p("| Objects evaluated | %d |\n", r.Objects)
	}
	p("| Policy checks | %d |\n\n", r.Checks)

	p("## Summary\n\n")
	p("| Framework | Version | Controls | Passed | With exceptions | Failed | Manual | Score | Automated |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for i := range r.Frameworks {
		f := &r.Frameworks[i]
		s := f.Summary
		p("| %s | %s | %d | %d | %d | %d | %d | %s | %d of %d (%s) |\n", md(f.Name), md(f.Version), s.Controls, s.Passed, s.PassedWithExceptions, s.Failed, s.Manual, percent(s.Score),
			s.Automated, s.Controls, percent(s.AutomatedShare))
	}
	p("\nFailing and Waived count results (a resource per policy); Denied / warned counts the admission requests of the period.\nScore = passed ÷ (passed + failed). Controls passed with exceptions count as passed; manual controls are reviewed by hand and not scored. Automated = controls not manual ÷ controls.\n\n")

	if len(r.Clusters) > 0 {
		writeMarkdownClusters(p, r)
	}
	for i := range r.Frameworks {
		writeMarkdownFramework(p, &r.Frameworks[i])
	}

	if v := r.Vulnerabilities; v != nil {
		writeMarkdownVulnerabilities(p, v)
	}
	if d := r.Deployments; d != nil {
		writeMarkdownDeployments(p, d)
	}
	if c := r.ProfileChanges; c != nil {
		writeMarkdownProfileChanges(p, c)
	}

	p("## Exceptions in force\n\n")
	if len(r.Exceptions) == 0 {
		p("No exception was in force.\n\n")
	} else {
		p("| Exception | Policies | Applies to | Reason | Ticket | Approver | Expires | Waived results |\n")
		p("|---|---|---|---|---|---|---|--:|\n")
		for i := range r.Exceptions {
			x := &r.Exceptions[i]
			p("| %s | %s | %s | %s | %s | %s | %s | %d |\n", clusterPrefix(x.Cluster)+code(x.Namespace+"/"+x.Name), md(strings.Join(x.Policies, ", ")),
				md(matchText(x)), md(x.Reason), md(x.Ticket), md(x.Approver), humanTime(x.Expires), x.Waived)
		}
		p("\n")
	}

	p("## Admission denials and warnings\n\n")
	writeMarkdownDenials(p, r.Denials)

	p("## Other engines\n\n")
	others := 0
	for i := range r.Sources {
		s := &r.Sources[i]
		if s.Source == SourceTollgate {
			continue
		}
		others++
		p("### %s\n\n", md(s.Source))
		p("%s: %d pass, %d fail, %d warn, %d error, %d skip.\n\n", plural(s.Summary.Total(), "result"), s.Summary.Pass, s.Summary.Fail, s.Summary.Warn, s.Summary.Error, s.Summary.Skip)
		if len(s.Results) == 0 {
			continue
		}
		p("| Resource | Policy | Rule | Result | Severity | Message |\n|---|---|---|---|---|---|\n")
		for j := range s.Results {
			if j == maxListed {
				p("\n… and %d more (see the JSON report).\n", len(s.Results)-maxListed)
				break
			}
			res := &s.Results[j]
			p("| %s | %s | %s | %s | %s | %s |\n", md(resourceText(res)), code(res.Policy), md(res.Rule), res.Result, res.Severity, md(res.Message))
		}
		p("\n")
	}
	if others == 0 {
		p("No other engine's reports were found.\n\n")
	}

	if len(r.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", md(n))
		}
		p("\n")
	}
	return b.Flush()
}

func writeMarkdownFramework(p func(string, ...any), f *FrameworkResult) {
	p("## %s %s\n\n", md(f.Name), md(f.Version))
	if f.Description != "" {
		p("%s\n\n", md(f.Description))
	}
	p("Score %s · %s.\n\n", percent(f.Summary.Score), automatedText(f.Summary))
	p("| Control | Title | Verdict | Failing | Waived | Denied / warned |\n")
	p("|---|---|---|--:|--:|--:|\n")
	for j := range f.Controls {
		c := &f.Controls[j]
		verdict := c.Verdict.Label()
		if c.Verdict == VerdictFailed {
			verdict = "**" + verdict + "**"
		}
		if c.Verdict == VerdictManual && len(c.Failures)+len(c.Waived) == 0 {
			p("| %s | %s | %s | | | %s |\n", md(c.ID), md(c.Title), verdict, denialCell(c))
			continue
		}
		p("| %s | %s | %s | %d | %d | %s |\n", md(c.ID), md(c.Title), verdict, len(c.Failures), len(c.Waived), denialCell(c))
	}
	p("\n")
	writeMarkdownEvidence(p, f)
	for j := range f.Controls {
		c := &f.Controls[j]
		if len(c.Failures) == 0 && len(c.Waived) == 0 {
			continue
		}
		p("### %s %s — %s\n\n", md(c.ID), md(c.Title), c.Verdict.Label())
		if c.Description != "" {
			p("%s\n\n", md(c.Description))
		}
		if len(c.Clusters) > 0 {
			p("By cluster: %s.\n\n", clusterVerdictsText(c.Clusters, md))
		}
		if c.Verdict == VerdictManual {
			p("Reviewed by hand; these results name the control and are shown for the review.\n\n")
		} else {
			pols := make([]string, len(c.Policies))
			for k, pol := range c.Policies {
				pols[k] = code(pol)
			}
			p("Evidenced by %s.\n\n", strings.Join(pols, ", "))
			if ev := c.Evidence; ev != nil {
				p("Examined: %s.\n\n", examinedText(ev, md, code))
			}
		}
		if len(c.Failures) > 0 {
			p("| Resource | Policy | Severity | Message | Remediation |\n|---|---|---|---|---|\n")
			for k := range c.Failures {
				if k == maxListed {
					p("\n… and %d more (see the JSON or CSV report).\n", len(c.Failures)-maxListed)
					break
				}
				res := &c.Failures[k]
				pol := code(res.Policy)
				if res.Source != SourceTollgate {
					pol = md(res.Source) + " " + pol
				}
				p("| %s | %s | %s | %s | %s |\n", clusterPrefix(res.Cluster)+md(resourceText(res)), pol, res.Severity, md(res.Message), md(res.Remediation))
			}
			p("\n")
		}
		if len(c.Waived) > 0 {
			p("Waived by exceptions in force:\n\n")
			p("| Resource | Policy | Message | Exception | Approver | Ticket | Expires |\n|---|---|---|---|---|---|---|\n")
			for k := range c.Waived {
				if k == maxListed {
					p("\n… and %d more (see the JSON or CSV report).\n", len(c.Waived)-maxListed)
					break
				}
				res := &c.Waived[k]
				x := res.Exception
				p("| %s | %s | %s | %s | %s | %s | %s |\n", clusterPrefix(res.Cluster)+md(resourceText(res)), code(res.Policy), md(res.Message),
					code(x.Namespace+"/"+x.Name), md(x.Approver), md(x.Ticket), humanTime(x.Expires))
			}
			p("\n")
		}
		if c.Remediation != "" {
			p("**Remediation:** %s\n\n", md(c.Remediation))
		}
	}
}

// writeMarkdownVulnerabilities renders the image scans per namespace and
// team, the most severe vulnerabilities, and the controls that require
// scanning.
func writeMarkdownVulnerabilities(p func(string, ...any), v *VulnerabilitySection) {
	p("## Image vulnerabilities\n\n")
	p("Every running image is scanned once per digest; counts are per distinct vulnerable image. Unscanned counts images without a current result (pending, failed, or scanned with a stale database).\n\n")
	p("Controls that require image scanning:\n\n")
	for _, c := range v.Controls {
		if len(c.Controls) == 0 {
			p("- %s: none\n", md(c.Name))
			continue
		}
		p("- %s: %s\n", md(c.Name), md(strings.Join(c.Controls, "; ")))
	}
	p("\n| Namespace | Team | Workloads | Images | CRITICAL | HIGH | MEDIUM | LOW | UNKNOWN | Fixable | Unscanned | Most severe |\n")
	p("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	row := func(ns, team string, g *VulnerabilityGroup) {
		var top []string
		for i := range g.Top[:min(len(g.Top), 3)] {
			top = append(top, code(g.Top[i].ID))
		}
		p("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n", ns, team, g.Workloads, g.Images,
			g.Counts["CRITICAL"], g.Counts["HIGH"], g.Counts["MEDIUM"], g.Counts["LOW"], g.Counts["UNKNOWN"], g.Fixable, g.Unscanned, strings.Join(top, ", "))
	}
	for i := range v.Groups {
		if i == maxListed {
			p("\n… and %d more (see the JSON report).\n", len(v.Groups)-maxListed)
			break
		}
		g := &v.Groups[i]
		row(code(g.Namespace), md(g.Team), g)
	}
	row("**all**", "", &v.Totals)
	p("\n")
	if len(v.Totals.Top) > 0 {
		p("Most severe vulnerabilities:\n\n| Vulnerability | Severity | Package | Installed | Fixed | Images |\n|---|---|---|---|---|--:|\n")
		for i := range v.Totals.Top {
			t := &v.Totals.Top[i]
			p("| %s | %s | %s | %s | %s | %d |\n", code(t.ID), t.Severity, md(t.Package), md(t.Installed), md(cmpOr(t.Fixed, "no fix")), t.Images)
		}
		p("\n")
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func denialCell(c *ControlResult) string {
	if c.Denied == 0 && c.Warned == 0 {
		return ""
	}
	return fmt.Sprintf("%d / %d", c.Denied, c.Warned)
}

func writeMarkdownDenials(p func(string, ...any), d *Denials) {
	if d == nil {
		p("No decision log was read (give --decision-log).\n\n")
		return
	}
	p("From %s to %s: %s logged, %d denied, %d admitted with warnings. Dry runs left out: %d; entries outside the period: %d.\n\n",
		humanTime(d.From), humanTime(d.To), plural(d.Requests, "admission request"), d.Denied, d.Warned, d.DryRun, d.OutsidePeriod)
	p("Only requests from the authenticated API server count as evidence: %s left out (no verified client certificate); %s left out because the line does not match its hash; %s the server could not write.\n\n",
		plural(d.Unauthenticated, "unauthenticated entry"), plural(d.Tampered, "edited entry"), plural(d.Lost, "entry"))
	writeMarkdownIntegrity(p, d.Integrity)
	if len(d.Clusters) > 0 {
		p("| Cluster | Requests | Denied | Warned | Judged by policy set |\n|---|--:|--:|--:|---|\n")
		for _, c := range d.Clusters {
			sets := codeList(c.PolicySets)
			if c.MorePolicySets > 0 {
				sets += fmt.Sprintf(" and others (%s)", plural(c.MorePolicySets, "request"))
			}
			p("| %s | %d | %d | %d | %s |\n", md(cmpOr(c.Cluster, "(not named)")), c.Requests, c.Denied, c.Warned, sets)
		}
		p("\n")
	}
	if len(d.ByPolicy) > 0 {
		p("| Policy | Denied | Warned | Controls |\n|---|--:|--:|---|\n")
		for i := range d.ByPolicy {
			pd := &d.ByPolicy[i]
			p("| %s | %d | %d | %s |\n", code(pd.Policy), pd.Denied, pd.Warned, md(FormatControls(pd.Controls)))
		}
		p("\nLatest examples:\n\n")
		p("| Time | User | Operation | Resource | Policy | Action | Message |\n|---|---|---|---|---|---|---|\n")
		for _, x := range latestDenials(d, 10) {
			p("| %s | %s | %s | %s | %s | %s | %s |\n", humanTime(x.Time), md(x.User), md(x.Operation), clusterPrefix(x.Cluster)+md(x.Resource.String()), code(x.Policy), x.Action, md(x.Message))
		}
		p("\n")
	}
	if d.Malformed > 0 {
		p("%s skipped:\n\n", plural(d.Malformed, "malformed line"))
		for _, l := range d.MalformedLines {
			p("- %s line %d: %s\n", md(l.Source), l.Line, md(l.Error))
		}
		if d.Malformed > len(d.MalformedLines) {
			p("- … and %d more\n", d.Malformed-len(d.MalformedLines))
		}
		p("\n")
	}
}

func writeMarkdownIntegrity(p func(string, ...any), logs []LogIntegrity) {
	if len(logs) == 0 {
		return
	}
	p("| Decision log | Integrity | Lines in the chain | Lines without chain fields | Problems |\n|---|---|--:|--:|--:|\n")
	for _, l := range logs {
		p("| %s | %s | %d | %d | %d |\n", md(l.Source), integrityText(&l), l.Chained, l.Unchained, len(l.Problems)+l.MoreProblems)
	}
	p("\n")
	for _, l := range logs {
		for _, e := range l.Problems {
			p("- %s: %s\n", md(e.Source), md(e.Error)) // the message names the line
		}
		if l.MoreProblems > 0 {
			p("- %s: … and %d more\n", md(l.Source), l.MoreProblems)
		}
	}
	p("\n")
}

// integrityText is a log's status with what qualifies it.
func integrityText(l *LogIntegrity) string {
	s := l.Status
	if l.Open && l.Status != IntegrityOpen {
		s += "; last chain open"
	}
	if l.Unkeyed {
		s += "; keyed hashes not checked (no key given)"
	}
	return s
}

// latestDenials merges the policies' examples, newest first, and keeps n.
func latestDenials(d *Denials, n int) []Denial {
	var all []Denial
	for i := range d.ByPolicy {
		all = append(all, d.ByPolicy[i].Latest...)
	}
	sortDenials(all)
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// writeMarkdownDeployments renders deployment frequency per team and ISO
// week, the share on the golden path and the lead times.
func writeMarkdownDeployments(p func(string, ...any), d *DeploymentSection) {
	p("## Deployments\n\n")
	p("%s\n\n", deploymentsIntro)
	if d.Deployments == 0 {
		p("No deployment was logged in the period.\n\n")
		return
	}
	p("%s in the period, %s on the golden path. Median lead time from commit to admission: %s (%s carried a commit time).\n\n",
		plural(d.Deployments, "deployment"), goldenText(d.Golden, d.GoldenShare), humanDuration(d.MedianLeadTimeSeconds), plural(d.LeadTimes, "deployment"))
	p("| Team | ISO week | Deployments | On the golden path | Median lead time |\n|---|---|--:|--:|--:|\n")
	rows := 0
	for i := range d.Teams {
		t := &d.Teams[i]
		for j := range t.Weeks {
			if rows == maxListed {
				p("\n… and more (see the JSON report).\n")
				break
			}
			rows++
			w := &t.Weeks[j]
			p("| %s | %s | %d | %s | %s |\n", md(t.Team), w.Week, w.Deployments, goldenText(w.Golden, w.GoldenShare), humanDuration(w.MedianLeadTimeSeconds))
		}
	}
	for i := range d.Teams {
		if i == maxListed {
			break
		}
		t := &d.Teams[i]
		p("| %s | **all weeks** | %d | %s | %s |\n", md(t.Team), t.Deployments, goldenText(t.Golden, t.GoldenShare), humanDuration(t.MedianLeadTimeSeconds))
	}
	p("\nBy profile: ")
	for i, pr := range d.Profiles {
		if i > 0 {
			p(", ")
		}
		golden := ""
		if pr.Golden {
			golden = " (golden path)"
		}
		p("%s%s %d", code(pr.Profile), golden, pr.Deployments)
	}
	p(".\n\n")
}

// deploymentsIntro says what counts as a deployment, in every rendering.
const deploymentsIntro = "A deployment is an admitted change to a workload's pod template (not a scale, a status update, a no-op re-apply or a dry run), " +
	"read from the decision log's authenticated, intact entries. The golden path is the profile the config marked default when the change was admitted. " +
	"The lead time runs from the commit time the workload carried (tollgate.dev/commit-time or the config's deployments.commitTimeAnnotations) to admission."

func goldenText(n int, share *float64) string {
	if share == nil {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%s)", n, percent(share))
}

// writeMarkdownProfileChanges lists who moved which namespace from which
// profile to which.
func writeMarkdownProfileChanges(p func(string, ...any), c *ProfileChangeSection) {
	p("## Namespace profile changes\n\n")
	p("Changes of a namespace's profile, judged at admission by the %s gate (only the users and groups the config names may make them): %d allowed, %d denied.\n\n",
		code(PolicyNamespaceProfile), c.Allowed, c.Denied)
	if len(c.Changes) == 0 {
		p("No namespace changed its profile in the period.\n\n")
		return
	}
	p("| Time | User | Namespace | From | To | Outcome | Message |\n|---|---|---|---|---|---|---|\n")
	for i := range c.Changes {
		if i == maxListed {
			p("\n… and %d more (see the JSON report).\n", len(c.Changes)-maxListed)
			break
		}
		x := &c.Changes[i]
		p("| %s | %s | %s | %s | %s | %s | %s |\n", humanTime(x.Time), md(x.User), code(x.Namespace), profileCell(x.From), profileCell(x.To), changeOutcome(x), md(x.Message))
	}
	p("\n")
}

func profileCell(name string) string {
	if name == "" {
		return "—"
	}
	return code(name)
}

// changeOutcome is ALLOWED or DENIED.
func changeOutcome(c *ProfileChange) string {
	if c.Allowed {
		return "ALLOWED"
	}
	return "DENIED"
}

// writeMarkdownEvidence lists, per control, what its policies examined
// and examples of what passed, or why it is reviewed by hand.
func writeMarkdownEvidence(p func(string, ...any), f *FrameworkResult) {
	listed := false
	for j := range f.Controls {
		c := &f.Controls[j]
		var line string
		switch {
		case c.Verdict == VerdictManual && c.Evidence == nil && strings.HasPrefix(c.Reason, "Not evidenced"):
			line = md(c.Reason)
		case c.Verdict == VerdictManual && c.Reason != "":
			line = "Reviewed by hand: " + md(c.Reason)
		case c.Evidence != nil:
			line = "Examined: " + examinedText(c.Evidence, md, code) + "."
			if ex := passedExamples(c.Evidence, md); ex != "" {
				line += " Passed, for example: " + ex + "."
			}
		default:
			continue
		}
		if !listed {
			p("Evidence and reasons, per control:\n\n")
			listed = true
		}
		p("- **%s** %s — %s\n", md(c.ID), c.Verdict.Label(), line)
	}
	if listed {
		p("\n")
	}
}

// writeMarkdownClusters renders the per-cluster breakdown: each
// cluster's identity and policy sets, then per framework and cluster the
// verdict counts and score.
func writeMarkdownClusters(p func(string, ...any), r *Report) {
	p("## Clusters\n\n")
	p("A control fails if it fails in any cluster; each failing resource names its cluster.\n\n")
	p("| Cluster | API server | Kubernetes version | Cluster UID (kube-system) | Policy set | Scanner | Policy checks |\n|---|---|---|---|---|---|--:|\n")
	for i := range r.Clusters {
		b := &r.Clusters[i]
		c := &b.Cluster
		if c.Unreachable != "" {
			p("| %s | %s | not read: %s | | | | |\n", md(c.Name), md(c.Server), md(c.Unreachable))
			continue
		}
		p("| %s | %s | %s | %s | %s | %s | %d |\n", md(c.Name), md(c.Server), md(c.KubernetesVersion), code(c.UID),
			cmpOr(codeList(c.PolicySets), "not recorded"), md(b.Versions.Scanner), b.Checks)
	}
	p("\n| Framework | Cluster | Passed | With exceptions | Failed | Manual | Score |\n|---|---|--:|--:|--:|--:|--:|\n")
	for i := range r.Frameworks {
		f := &r.Frameworks[i]
		for j := range r.Clusters {
			b := &r.Clusters[j]
			for _, cf := range b.Frameworks {
				if cf.ID != f.ID {
					continue
				}
				s := cf.Summary
				p("| %s | %s | %d | %d | %d | %d | %s |\n", md(f.Name), md(b.Cluster.Name), s.Passed, s.PassedWithExceptions, s.Failed, s.Manual, percent(s.Score))
			}
		}
		s := f.Summary
		p("| %s | **all** | %d | %d | %d | %d | %s |\n", md(f.Name), s.Passed, s.PassedWithExceptions, s.Failed, s.Manual, percent(s.Score))
	}
	p("\n")
}

// codeList renders digests as inline code, comma-separated.
func codeList(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

// clusterPrefix names a resource's cluster before it: "b: ".
func clusterPrefix(cluster string) string {
	if cluster == "" {
		return ""
	}
	return "**" + md(cluster) + "**: "
}

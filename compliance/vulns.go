package compliance

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/policies/vuln"
)

// maxPropVulnerabilities bounds the vulnerabilities PropVulnerabilities
// names, and maxPropLength its length: a Report holds up to a thousand
// results and an old image thousands of vulnerabilities.
const (
	maxPropVulnerabilities = 10
	maxPropLength          = 2048
)

// ScanProperties are the result properties of a finding on an image with a
// scan summary: the image, digest, status, counts by severity, fixable
// count and the most severe vulnerabilities (at most ten), so a Report
// carries the scan per workload. Nil for a nil summary.
func ScanProperties(image string, s *vuln.Summary) map[string]string {
	if s == nil {
		return nil
	}
	props := map[string]string{PropImage: image, PropScanStatus: s.Status}
	if s.Digest != "" {
		props[PropDigest] = s.Digest
	}
	if s.Counts != nil {
		fixable := 0
		for _, sev := range vuln.Severities {
			props[strings.ToLower(sev)+PropCountSuffix] = strconv.Itoa(s.Counts[sev])
			fixable += s.Fixable[sev]
		}
		props[PropFixableCount] = strconv.Itoa(fixable)
	}
	if len(s.Vulns) > 0 {
		props[PropVulnerabilities] = FormatVulnerabilities(s.Vulns[:min(len(s.Vulns), maxPropVulnerabilities)])
	}
	return props
}

// FormatVulnerabilities writes vulnerabilities as PropVulnerabilities
// holds them, "; "-separated, each "ID SEVERITY package installed -> fixed"
// or "ID SEVERITY package installed (no fix)", cut to a bounded length at
// an entry's end.
func FormatVulnerabilities(vs []vuln.Vulnerability) string {
	var b strings.Builder
	for i := range vs {
		v := &vs[i]
		entry := strings.Join([]string{field(v.ID), field(strings.ToUpper(v.Severity)), field(v.Package), field(v.Installed)}, " ")
		if v.Fixable() {
			entry += " -> " + strings.ReplaceAll(v.Fixed, ";", ",")
		} else {
			entry += " (no fix)"
		}
		if b.Len()+len(entry)+2 > maxPropLength {
			break
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(entry)
	}
	return b.String()
}

// field is one space-free word of an entry ("-" when empty).
func field(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, ";", ",")), "_")
	if s == "" {
		return "-"
	}
	return s
}

// ParseVulnerabilities reads PropVulnerabilities back; entries it cannot
// read (another writer's) are skipped.
func ParseVulnerabilities(s string) []vuln.Vulnerability {
	var out []vuln.Vulnerability
	for _, entry := range strings.Split(s, "; ") {
		f := strings.Fields(entry)
		if len(f) < 5 || vuln.SeverityRank(f[1]) < 0 {
			continue
		}
		v := vuln.Vulnerability{ID: f[0], Severity: f[1], Package: f[2], Installed: f[3]}
		switch {
		case f[4] == "->" && len(f) > 5:
			v.Fixed = strings.Join(f[5:], " ")
		case strings.Join(f[4:], " ") == "(no fix)":
		default:
			continue
		}
		out = append(out, v)
	}
	return out
}

// VulnerabilitySection is the report's view of the image scans: per
// namespace and team, what the vulnerable images hold, from the findings
// of images-vulnerability-report (and images-unscanned for the images
// without a result), and which controls of each framework require image
// scanning.
type VulnerabilitySection struct {
	// Totals adds up every group (an image in several groups counts in
	// each).
	Totals VulnerabilityGroup `json:"totals"`
	// Groups are per namespace and team, most critical first.
	Groups []VulnerabilityGroup `json:"groups"`
	// Controls say, per framework reported on, which controls require
	// image scanning (none for some frameworks).
	Controls []ScanControls `json:"controls"`
}

// VulnerabilityGroup is what the vulnerable images of one namespace and
// team hold. Counts are per distinct image: an image run by several
// workloads counts once.
type VulnerabilityGroup struct {
	Namespace string `json:"namespace,omitempty"`
	Team      string `json:"team,omitempty"`
	// Workloads counts the workloads running a vulnerable image; Images
	// the distinct vulnerable images (by digest); Unscanned the images
	// without a current result (pending, failed, stale).
	Workloads int `json:"workloads"`
	Images    int `json:"images"`
	Unscanned int `json:"unscanned"`
	// Counts are the vulnerabilities by severity (CRITICAL ... UNKNOWN);
	// Fixable those with a fixed version.
	Counts  map[string]int `json:"counts"`
	Fixable int            `json:"fixable"`
	// Top are the most severe vulnerabilities, with the images they
	// affect (at most ten).
	Top []TopVulnerability `json:"top,omitempty"`
}

// TopVulnerability is one vulnerability across a group's images.
type TopVulnerability struct {
	vuln.Vulnerability
	// Images counts the group's images it affects.
	Images int `json:"images"`
}

// ScanControls are the controls of one framework that require image
// scanning.
type ScanControls struct {
	Framework string `json:"framework"`
	Name      string `json:"name"`
	// Controls are "id title"; empty when the framework has none.
	Controls []string `json:"controls"`
}

// maxTop bounds a group's top vulnerabilities.
const maxTop = 10

// scanPolicies are the library's policies on image scans; a control that
// lists one of them requires image scanning.
var scanPolicies = []string{"images-vulnerabilities", "images-unscanned", VulnerabilityReportPolicy}

// UnscannedPolicy is the library policy on images without a current scan.
const UnscannedPolicy = "images-unscanned"

// buildVulnerabilities assembles the section from Tollgate's results, or
// returns nil when no result is about an image scan.
func buildVulnerabilities(results []Result, fws []Framework) *VulnerabilitySection {
	type acc struct {
		group     VulnerabilityGroup
		images    map[string]bool
		unscanned map[string]bool
		workloads map[string]bool
		top       map[string]*TopVulnerability
	}
	groups := map[[2]string]*acc{}
	get := func(r *Result) *acc {
		key := [2]string{r.Resource.Namespace, r.Properties[PropTeam]}
		a := groups[key]
		if a == nil {
			a = &acc{group: VulnerabilityGroup{Namespace: key[0], Team: key[1], Counts: zeroCounts()},
				images: map[string]bool{}, unscanned: map[string]bool{}, workloads: map[string]bool{}, top: map[string]*TopVulnerability{}}
			groups[key] = a
		}
		return a
	}
	for i := range results {
		r := &results[i]
		if r.Source != SourceTollgate {
			continue
		}
		switch r.Policy {
		case UnscannedPolicy:
			a := get(r)
			a.unscanned[cmp.Or(r.Properties[PropImage], r.Properties[PropPath], r.Message)] = true
		case VulnerabilityReportPolicy:
			a := get(r)
			a.workloads[r.Resource.String()] = true
			image := cmp.Or(r.Properties[PropDigest], r.Properties[PropImage], r.Message)
			if a.images[image] {
				continue
			}
			a.images[image] = true
			for _, sev := range vuln.Severities {
				a.group.Counts[sev] += propCount(r.Properties[strings.ToLower(sev)+PropCountSuffix])
			}
			a.group.Fixable += propCount(r.Properties[PropFixableCount])
			for _, v := range ParseVulnerabilities(r.Properties[PropVulnerabilities]) {
				key := v.ID + "|" + v.Package
				if t := a.top[key]; t != nil {
					t.Images++
				} else {
					a.top[key] = &TopVulnerability{Vulnerability: v, Images: 1}
				}
			}
		}
	}
	if len(groups) == 0 {
		return nil
	}
	s := &VulnerabilitySection{Groups: []VulnerabilityGroup{}, Totals: VulnerabilityGroup{Counts: zeroCounts()}}
	all := map[string]*TopVulnerability{}
	for _, a := range groups {
		g := a.group
		g.Workloads, g.Images, g.Unscanned = len(a.workloads), len(a.images), len(a.unscanned)
		var top []TopVulnerability
		for _, t := range a.top {
			top = append(top, *t)
			if at := all[t.ID+"|"+t.Package]; at != nil {
				at.Images += t.Images
			} else {
				c := *t
				all[t.ID+"|"+t.Package] = &c
			}
		}
		g.Top = sortTop(top)
		s.Groups = append(s.Groups, g)
		s.Totals.Workloads += g.Workloads
		s.Totals.Images += g.Images
		s.Totals.Unscanned += g.Unscanned
		s.Totals.Fixable += g.Fixable
		for sev, n := range g.Counts {
			s.Totals.Counts[sev] += n
		}
	}
	var top []TopVulnerability
	for _, t := range all {
		top = append(top, *t)
	}
	s.Totals.Top = sortTop(top)
	slices.SortFunc(s.Groups, func(a, b VulnerabilityGroup) int {
		for _, sev := range vuln.Severities {
			if c := cmp.Compare(b.Counts[sev], a.Counts[sev]); c != 0 {
				return c
			}
		}
		return cmp.Or(cmp.Compare(b.Unscanned, a.Unscanned), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Team, b.Team))
	})
	for i := range fws {
		fw := &fws[i]
		sc := ScanControls{Framework: fw.ID, Name: fw.Name, Controls: []string{}}
		for j := range fw.Controls {
			c := &fw.Controls[j]
			if slices.ContainsFunc(scanPolicies, c.Evidences) {
				sc.Controls = append(sc.Controls, c.ID+" "+c.Title)
			}
		}
		s.Controls = append(s.Controls, sc)
	}
	return s
}

// sortTop orders vulnerabilities most severe first, then by the images
// they affect, and keeps the first maxTop.
func sortTop(top []TopVulnerability) []TopVulnerability {
	slices.SortFunc(top, func(a, b TopVulnerability) int {
		return cmp.Or(vuln.SeverityRank(b.Severity)-vuln.SeverityRank(a.Severity), cmp.Compare(b.Images, a.Images),
			cmp.Compare(a.ID, b.ID), cmp.Compare(a.Package, b.Package))
	})
	return top[:min(len(top), maxTop)]
}

// maxPropCount bounds a count read from a Report: far above any image's
// vulnerabilities, far below what adding a cluster's would overflow.
const maxPropCount = 1 << 24

// propCount reads a count property; one that is not a number, is negative
// or is beyond maxPropCount counts as nothing.
func propCount(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxPropCount {
		return 0
	}
	return n
}

func zeroCounts() map[string]int {
	m := make(map[string]int, len(vuln.Severities))
	for _, s := range vuln.Severities {
		m[s] = 0
	}
	return m
}

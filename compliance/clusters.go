package compliance

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ClusterBreakdown is one cluster's part of a report over several
// clusters: who it is, what judged it and how each framework fares there.
type ClusterBreakdown struct {
	// Cluster is the cluster's identity and the policy sets its Reports
	// name; Unreachable is set for a cluster that could not be read.
	Cluster Cluster `json:"cluster"`
	// Versions are the scanner and library versions its Reports name.
	Versions Versions `json:"versions"`
	// Checks counts Tollgate's policy checks in the cluster.
	Checks int `json:"checks"`
	// Frameworks are each framework's verdict counts and score in the
	// cluster alone, in the report's order; empty for an unreachable
	// cluster.
	Frameworks []ClusterFramework `json:"frameworks"`
}

// ClusterFramework is one framework's summary in one cluster.
type ClusterFramework struct {
	ID      string           `json:"id"`
	Summary FrameworkSummary `json:"summary"`
}

// ClusterVerdict is a control's verdict in one cluster, with the results
// that fail it there and those an exception waives.
type ClusterVerdict struct {
	Cluster  string  `json:"cluster"`
	Verdict  Verdict `json:"verdict"`
	Failures int     `json:"failures"`
	Waived   int     `json:"waived"`
}

// BuildClusters assembles one report over several clusters. in holds
// what the clusters share (the time, the frameworks, the Tollgate version,
// the decision logs' Denials, a title, notes); each of clusters is one
// cluster's Input as a report on it alone is built from, with Cluster
// set and names distinct. A cluster whose Cluster.Unreachable is set is
// listed, and named in a note, with no results.
//
// Every result is tagged with its cluster. A control's verdict is decided
// on the results of all clusters, so it fails if it fails in any; each
// control also carries its verdict per cluster, and the report a
// breakdown per cluster: identity, policy sets, and per framework the
// verdict counts and score of that cluster alone.
func BuildClusters(in Input, clusters []Input) *Report {
	merged := in
	merged.Cluster = nil
	merged.Results = slices.Clone(in.Results)
	merged.Counted = maps.Clone(in.Counted)
	if merged.Counted == nil {
		merged.Counted = map[string]Summary{}
	}
	merged.Examined = slices.Clone(in.Examined)
	merged.Exceptions = slices.Clone(in.Exceptions)
	merged.exceptionClusters = make([]string, len(in.Exceptions))
	merged.Notes = slices.Clone(in.Notes)
	merged.EvidenceKnown = true
	var names, scanners, libraries, sets []string
	reachable := 0
	for i := range clusters {
		c := clusters[i].Cluster
		if c == nil {
			c = &Cluster{Name: fmt.Sprintf("cluster %d", i+1)}
		}
		names = append(names, c.Name)
		if c.Unreachable != "" {
			merged.Notes = append(merged.Notes, fmt.Sprintf("Cluster %s (%s) could not be read and is not in this report: %s", c.Name, c.Server, c.Unreachable))
			continue
		}
		reachable++
		part := &clusters[i]
		for _, r := range part.Results {
			r.Cluster = c.Name
			merged.Results = append(merged.Results, r)
		}
		for source, s := range countedBySource(part) {
			merged.Counted[source] = merged.Counted[source].plus(s)
		}
		merged.Examined = append(merged.Examined, part.Examined...)
		merged.EvidenceKnown = merged.EvidenceKnown && part.EvidenceKnown
		merged.Exceptions = append(merged.Exceptions, part.Exceptions...)
		for range part.Exceptions {
			merged.exceptionClusters = append(merged.exceptionClusters, c.Name)
		}
		merged.Objects += part.Objects
		for _, n := range part.Notes {
			merged.Notes = append(merged.Notes, "Cluster "+c.Name+": "+n)
		}
		scanners = addVersions(scanners, part.Versions.Scanner)
		libraries = addVersions(libraries, part.Versions.PolicyLibrary)
		sets = append(sets, strings.Join(c.PolicySets, ","))
	}
	if reachable == 0 {
		merged.EvidenceKnown = false
	}
	merged.Versions.Scanner = strings.Join(scanners, ", ")
	merged.Versions.PolicyLibrary = strings.Join(libraries, ", ")
	// One policy set everywhere is named on the cover; otherwise the
	// breakdown names each cluster's.
	if len(sets) > 0 && sets[0] != "" && !strings.Contains(sets[0], ",") && len(slices.Compact(slices.Clone(sets))) == 1 {
		merged.Versions.PolicyDigest = sets[0]
	}
	if merged.Title == "" {
		merged.Title = "Compliance report — " + strings.Join(names, ", ")
	}

	r := Build(merged)
	for i := range clusters {
		part := clusters[i]
		c := part.Cluster
		if c == nil {
			c = &Cluster{Name: fmt.Sprintf("cluster %d", i+1)}
		}
		b := ClusterBreakdown{Cluster: *c, Versions: part.Versions, Frameworks: []ClusterFramework{}}
		b.Cluster.PolicySets = slices.Clone(c.PolicySets)
		if c.Unreachable != "" {
			r.Clusters = append(r.Clusters, b)
			continue
		}
		// The cluster alone, judged as a report on it would be; the
		// decision logs are the whole report's.
		part.GeneratedAt, part.Frameworks, part.Denials, part.Notes = in.GeneratedAt, in.Frameworks, nil, nil
		part.Versions.PodSecurity = in.Versions.PodSecurity
		alone := Build(part)
		b.Checks = alone.Checks
		for j := range alone.Frameworks {
			fw := &alone.Frameworks[j]
			b.Frameworks = append(b.Frameworks, ClusterFramework{ID: fw.ID, Summary: fw.Summary})
			for k := range fw.Controls {
				cr := &fw.Controls[k]
				// Build keeps the frameworks' and controls' order, so the
				// same indexes name the same control in r.
				target := &r.Frameworks[j].Controls[k]
				target.Clusters = append(target.Clusters, ClusterVerdict{
					Cluster: c.Name, Verdict: cr.Verdict, Failures: len(cr.Failures), Waived: len(cr.Waived),
				})
			}
		}
		r.Clusters = append(r.Clusters, b)
	}
	return r
}

// countedBySource is what a cluster counted per source: its Counted,
// and for a source it does not count there, its results (as Build counts
// them), so that summing clusters loses neither.
func countedBySource(in *Input) map[string]Summary {
	out := maps.Clone(in.Counted)
	if out == nil {
		out = map[string]Summary{}
	}
	listed := map[string]Summary{}
	for i := range in.Results {
		s := listed[in.Results[i].Source]
		s.Add(in.Results[i].Result)
		listed[in.Results[i].Source] = s
	}
	for source, s := range listed {
		if _, ok := in.Counted[source]; !ok {
			out[source] = s
		}
	}
	return out
}

// plus adds two summaries.
func (s Summary) plus(o Summary) Summary {
	s.Pass += o.Pass
	s.Fail += o.Fail
	s.Warn += o.Warn
	s.Error += o.Error
	s.Skip += o.Skip
	return s
}

// addVersions adds the versions of a comma-separated list not yet in vs.
func addVersions(vs []string, list string) []string {
	for _, v := range strings.Split(list, ", ") {
		if v != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return vs
}

// FailingClusters names the clusters where a control fails, in the
// report's cluster order.
func (c *ControlResult) FailingClusters() []string {
	var out []string
	for _, v := range c.Clusters {
		if v.Verdict == VerdictFailed {
			out = append(out, v.Cluster)
		}
	}
	return out
}

package compliance

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
)

// PolicyNamespaceProfile is the policy id of the gate on a Namespace's
// profile label: its findings on Namespace requests say who moved which
// namespace from which profile to which.
const PolicyNamespaceProfile = "namespace-profile"

// maxLeadSeconds bounds the lead times read: the server ignores commit
// times older than a year (webhook.MaxLeadTime).
const maxLeadSeconds = 366 * 24 * 3600

// NoTeam is how a deployment without a team label is reported.
const NoTeam = "(no team)"

// deploymentRecord is the decision log's deployment object (see
// webhook.Deployment).
type deploymentRecord struct {
	Team            string     `json:"team"`
	Profile         string     `json:"profile"`
	Golden          bool       `json:"golden"`
	CommitTime      *time.Time `json:"commitTime"`
	LeadTimeSeconds *float64   `json:"leadTimeSeconds"`
}

// deploymentEvent is one deployment read from a log as evidence.
type deploymentEvent struct {
	time      time.Time
	namespace string
	rec       deploymentRecord
}

// DeploymentSection is deployment frequency: the admitted changes to
// workloads' pod templates in the period, per team and ISO week, the share
// on the golden path (the profile the config marked default when the
// change was admitted), and the lead time from commit to admission where
// the workload carried its commit time.
type DeploymentSection struct {
	Deployments int `json:"deployments"`
	// Golden counts deployments on the golden path; GoldenShare is
	// Golden / Deployments (nil without deployments).
	Golden      int      `json:"golden"`
	GoldenShare *float64 `json:"goldenShare"`
	// LeadTimes counts deployments whose lead time is known;
	// MedianLeadTimeSeconds is their median.
	LeadTimes             int      `json:"leadTimes"`
	MedianLeadTimeSeconds *float64 `json:"medianLeadTimeSeconds,omitempty"`
	// Teams are the teams' figures, most deployments first.
	Teams []TeamDeployments `json:"teams"`
	// Profiles count deployments per profile.
	Profiles []ProfileDeployments `json:"profiles"`
}

// DeploymentCounts are the figures of a team, or of a team in a week.
type DeploymentCounts struct {
	Deployments           int      `json:"deployments"`
	Golden                int      `json:"golden"`
	GoldenShare           *float64 `json:"goldenShare"`
	LeadTimes             int      `json:"leadTimes"`
	MedianLeadTimeSeconds *float64 `json:"medianLeadTimeSeconds,omitempty"`
}

// TeamDeployments are a team's deployments, in total and per ISO week
// (2026-W47), oldest week first.
type TeamDeployments struct {
	Team string `json:"team"`
	DeploymentCounts
	Weeks []WeekDeployments `json:"weeks"`
}

// WeekDeployments are a team's deployments in one ISO week.
type WeekDeployments struct {
	Week string `json:"week"`
	DeploymentCounts
}

// ProfileDeployments counts the deployments on one profile.
type ProfileDeployments struct {
	Profile     string `json:"profile"`
	Golden      bool   `json:"golden"`
	Deployments int    `json:"deployments"`
}

// ProfileChange is a governed change of a Namespace's profile: who moved
// which namespace from which profile to which, and whether it was allowed.
type ProfileChange struct {
	Time      time.Time `json:"time"`
	User      string    `json:"user"`
	Operation string    `json:"operation"`
	Namespace string    `json:"namespace"`
	// From and To are the profiles, empty when the finding did not say.
	From    string `json:"from"`
	To      string `json:"to"`
	Allowed bool   `json:"allowed"`
	// Action is the finding's: audit when the change was allowed and
	// recorded, enforce when it was denied.
	Action  policies.Action `json:"action"`
	Message string          `json:"message"`
}

// ProfileChangeSection lists the profile changes of the period, newest
// first.
type ProfileChangeSection struct {
	Allowed int             `json:"allowed"`
	Denied  int             `json:"denied"`
	Changes []ProfileChange `json:"changes"`
}

// collect keeps the deployments and profile changes of an entry already
// accepted as evidence (in the period, real, authenticated, intact).
func (d *Denials) collect(e *decisionEntry) {
	if e.Deployment != nil && *e.Allowed && e.UID != "" {
		if d.deploymentUIDs == nil {
			d.deploymentUIDs = map[string]bool{}
		}
		if !d.deploymentUIDs[e.UID] { // the same request in two logs counts once
			d.deploymentUIDs[e.UID] = true
			d.deployments = append(d.deployments, deploymentEvent{time: e.Time.UTC(), namespace: e.Namespace, rec: *e.Deployment})
		}
	}
	if e.Kind != "v1/Namespace" {
		return
	}
	for i := range e.Findings {
		f := &e.Findings[i]
		if f.Policy != PolicyNamespaceProfile {
			continue
		}
		c := ProfileChange{
			Time: e.Time.UTC(), User: e.User, Operation: e.Operation, Namespace: cmp.Or(f.Details["namespace"], e.Name),
			From: f.Details["from"], To: f.Details["to"], Allowed: *e.Allowed, Action: f.Action, Message: f.Message,
		}
		if c.From == "" && c.To == "" {
			c.From, c.To = profilesInMessage(f.Message)
		}
		d.profileChanges = append(d.profileChanges, c)
		return
	}
}

// movedRE reads the profiles from a namespace-profile message when the
// finding carries no details: `moved from profile "golden" to
// "innovation"`, each name Go-quoted.
var movedRE = regexp.MustCompile(`from profile ("(?:[^"\\]|\\.)*") to (?:profile )?("(?:[^"\\]|\\.)*")`)

func profilesInMessage(msg string) (from, to string) {
	m := movedRE.FindStringSubmatch(msg)
	if m == nil {
		return "", ""
	}
	from, err1 := strconv.Unquote(m[1])
	to, err2 := strconv.Unquote(m[2])
	if err1 != nil || err2 != nil {
		return "", ""
	}
	return from, to
}

// buildDeployments is the deployment section of a decision log summary;
// nil when no log was read.
func buildDeployments(d *Denials) *DeploymentSection {
	if d == nil {
		return nil
	}
	s := &DeploymentSection{Teams: []TeamDeployments{}, Profiles: []ProfileDeployments{}}
	var all []float64
	teams := map[string]*teamAcc{}
	profiles := map[string]*ProfileDeployments{}
	for _, ev := range d.deployments {
		team := cmp.Or(ev.rec.Team, NoTeam)
		year, week := ev.time.ISOWeek()
		wk := fmt.Sprintf("%04d-W%02d", year, week)
		ta := teams[team]
		if ta == nil {
			ta = &teamAcc{weeks: map[string]*countAcc{}}
			teams[team] = ta
		}
		wa := ta.weeks[wk]
		if wa == nil {
			wa = &countAcc{}
			ta.weeks[wk] = wa
		}
		lead := ev.rec.LeadTimeSeconds
		if lead != nil && !(*lead >= 0 && *lead <= maxLeadSeconds) {
			lead = nil // not a lead time the server would have written
		}
		for _, a := range []*countAcc{&ta.countAcc, wa} {
			a.add(ev.rec.Golden, lead)
		}
		s.Deployments++
		if ev.rec.Golden {
			s.Golden++
		}
		if lead != nil {
			all = append(all, *lead)
		}
		p := cmp.Or(ev.rec.Profile, "none")
		if profiles[p] == nil {
			profiles[p] = &ProfileDeployments{Profile: p}
		}
		profiles[p].Deployments++
		profiles[p].Golden = profiles[p].Golden || ev.rec.Golden
	}
	s.GoldenShare = share(s.Golden, s.Deployments)
	s.LeadTimes, s.MedianLeadTimeSeconds = len(all), median(all)
	for team, ta := range teams {
		td := TeamDeployments{Team: team, DeploymentCounts: ta.counts(), Weeks: []WeekDeployments{}}
		for _, wk := range slices.Sorted(maps.Keys(ta.weeks)) {
			td.Weeks = append(td.Weeks, WeekDeployments{Week: wk, DeploymentCounts: ta.weeks[wk].counts()})
		}
		s.Teams = append(s.Teams, td)
	}
	slices.SortFunc(s.Teams, func(a, b TeamDeployments) int {
		return cmp.Or(cmp.Compare(b.Deployments, a.Deployments), cmp.Compare(a.Team, b.Team))
	})
	for _, p := range profiles {
		s.Profiles = append(s.Profiles, *p)
	}
	slices.SortFunc(s.Profiles, func(a, b ProfileDeployments) int {
		return cmp.Or(cmp.Compare(b.Deployments, a.Deployments), cmp.Compare(a.Profile, b.Profile))
	})
	return s
}

// buildProfileChanges is the profile change section; nil when no log was
// read.
func buildProfileChanges(d *Denials) *ProfileChangeSection {
	if d == nil {
		return nil
	}
	s := &ProfileChangeSection{Changes: slices.Clone(d.profileChanges)}
	if s.Changes == nil {
		s.Changes = []ProfileChange{}
	}
	for _, c := range s.Changes {
		if c.Allowed {
			s.Allowed++
		} else {
			s.Denied++
		}
	}
	slices.SortStableFunc(s.Changes, func(a, b ProfileChange) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(a.Namespace, b.Namespace))
	})
	return s
}

type countAcc struct {
	n, golden int
	leads     []float64
}

func (a *countAcc) add(golden bool, lead *float64) {
	a.n++
	if golden {
		a.golden++
	}
	if lead != nil {
		a.leads = append(a.leads, *lead)
	}
}

func (a *countAcc) counts() DeploymentCounts {
	return DeploymentCounts{Deployments: a.n, Golden: a.golden, GoldenShare: share(a.golden, a.n), LeadTimes: len(a.leads), MedianLeadTimeSeconds: median(a.leads)}
}

type teamAcc struct {
	countAcc
	weeks map[string]*countAcc
}

func share(n, of int) *float64 {
	if of == 0 {
		return nil
	}
	v := math.Round(float64(n)/float64(of)*1000) / 1000
	return &v
}

// median of the values, nil for none; it does not change vs.
func median(vs []float64) *float64 {
	if len(vs) == 0 {
		return nil
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &m
}

// humanDuration renders seconds for people: 45s, 12m, 1h 30m, 2d 3h.
func humanDuration(secs *float64) string {
	if secs == nil {
		return "—"
	}
	t := int64(math.Round(*secs))
	switch {
	case t < 60:
		return fmt.Sprintf("%ds", t)
	case t < 3600:
		return fmt.Sprintf("%dm", t/60)
	case t < 86400:
		if m := t % 3600 / 60; m > 0 {
			return fmt.Sprintf("%dh %dm", t/3600, m)
		}
		return fmt.Sprintf("%dh", t/3600)
	}
	if h := t % 86400 / 3600; h > 0 {
		return fmt.Sprintf("%dd %dh", t/86400, h)
	}
	return fmt.Sprintf("%dd", t/86400)
}

package compliance

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tollgate-dev/tollgate/compliance/logchain"
	"github.com/tollgate-dev/tollgate/policies"
)

// decisionEntry is the part of a decision log line (webhook.DecisionEntry,
// one JSON object per line) that the report reads.
type decisionEntry struct {
	Time      time.Time          `json:"time"`
	UID       string             `json:"uid"`
	User      string             `json:"user"`
	Operation string             `json:"operation"`
	Kind      string             `json:"kind"`
	Namespace string             `json:"namespace"`
	Name      string             `json:"name"`
	DryRun    bool               `json:"dryRun"`
	Allowed   *bool              `json:"allowed"`
	Findings  []policies.Finding `json:"findings"`
	// Deployment is set when the request deployed (webhook.Deployment).
	Deployment *deploymentRecord `json:"deployment"`
	// Authenticated and Client say who called (see
	// webhook.DecisionEntry); a line without them is unauthenticated.
	Authenticated bool   `json:"authenticated"`
	Client        string `json:"client"`
	// Cluster and PolicySet say where and by which policy set the
	// request was judged (tollgate serve --cluster-name, the loaded set's
	// digest); empty in lines of older servers.
	Cluster   string `json:"cluster"`
	PolicySet string `json:"policySet"`
	// The chain fields (see webhook.DecisionLog): a record line (start,
	// end, gap) or an entry, its sequence number, the hash of the line
	// before, and its own hash.
	Record    string    `json:"record"`
	Alg       string    `json:"alg"`
	Seq       uint64    `json:"seq"`
	Prev      string    `json:"prev"`
	Lost      int       `json:"lost"`
	LostSince time.Time `json:"lostSince"`
	Torn      int       `json:"torn"`
}

// DecisionLogOptions bounds what ReadDecisionLog counts.
type DecisionLogOptions struct {
	// From and To bound the period: entries before From or after To are
	// left out. A zero From means no lower bound; a zero To no upper.
	From, To time.Time
	// Examples is how many of the latest denials or warnings are kept per
	// policy (default 3).
	Examples int
	// MaxLineBytes is the longest line read (default 1 MiB); a longer one
	// is counted as malformed and skipped.
	MaxLineBytes int
	// Source names the log in messages (default "decision log").
	Source string
	// Key verifies the hashes of a chain keyed with HMAC-SHA256 (tollgate
	// serve --decision-log-key-file); without it only the links of such a
	// chain are checked.
	Key []byte
}

// maxLineErrors bounds how many malformed lines are listed one by one;
// beyond it they are only counted.
const maxLineErrors = 20

// Denials summarises the admission decisions of a period: how many
// requests were denied or warned, by which policies, with the latest
// examples. Dry-run requests are no evidence of anything that happened and
// are left out (counted in DryRun).
type Denials struct {
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Sources are the logs read.
	Sources []string `json:"sources"`
	// Lines is the number of lines read; Requests the number of entries in
	// the period, dry runs excluded.
	Lines    int `json:"lines"`
	Requests int `json:"requests"`
	// Denied counts requests refused; Warned requests admitted with a
	// warning.
	Denied int `json:"denied"`
	Warned int `json:"warned"`
	// DryRun counts dry-run entries left out; OutsidePeriod entries
	// before From or after To.
	DryRun        int `json:"dryRun"`
	OutsidePeriod int `json:"outsidePeriod"`
	// Unauthenticated counts entries left out because their caller was
	// not authenticated (no client certificate from the API server: anyone
	// who reached the webhook could have sent them); Tampered entries
	// left out because their line does not match its hash.
	Unauthenticated int `json:"unauthenticated"`
	Tampered        int `json:"tampered"`
	// Lost counts entries the server could not write (gap records) in the
	// period.
	Lost int `json:"lost"`
	// Integrity is the verification of each log's hash chain.
	Integrity []LogIntegrity `json:"integrity"`
	// Malformed counts lines that are not decision log entries;
	// MalformedLines lists the first of them with the reason.
	Malformed      int         `json:"malformed"`
	MalformedLines []LineError `json:"malformedLines,omitempty"`
	// ByPolicy counts the requests each policy denied or warned about,
	// most first.
	ByPolicy []PolicyDenials `json:"byPolicy"`
	// Clusters counts the requests per cluster the lines name, with the
	// policy sets that judged them, sorted by cluster; empty when no line
	// names a cluster or a policy set (lines of older servers).
	Clusters []ClusterDecisions `json:"clusters,omitempty"`

	// deployments and profileChanges are the evidence the report's
	// Deployments and Namespace profile changes sections are built from;
	// deploymentUIDs the requests already counted.
	deployments    []deploymentEvent
	deploymentUIDs map[string]bool
	profileChanges []ProfileChange
}

// ClusterDecisions counts the admission requests logged for one cluster
// (Cluster "" for lines that name none).
type ClusterDecisions struct {
	Cluster  string `json:"cluster"`
	Requests int    `json:"requests"`
	Denied   int    `json:"denied"`
	Warned   int    `json:"warned"`
	// PolicySets are the policy sets that judged them (digests), sorted;
	// more than one when the set changed in the period. At most
	// maxLineErrors are listed; MorePolicySets counts the requests judged
	// by others.
	PolicySets     []string `json:"policySets,omitempty"`
	MorePolicySets int      `json:"morePolicySets,omitempty"`
}

// LineError is a line of a log that could not be read.
type LineError struct {
	Source string `json:"source"`
	Line   int    `json:"line"`
	Error  string `json:"error"`
}

// PolicyDenials counts one policy's denials and warnings.
type PolicyDenials struct {
	Policy string `json:"policy"`
	Title  string `json:"title,omitempty"`
	Denied int    `json:"denied"`
	Warned int    `json:"warned"`
	// Controls are the controls the policy's findings declared.
	Controls []policies.Control `json:"controls,omitempty"`
	// Latest are the most recent examples, newest first.
	Latest []Denial `json:"latest"`
}

// Denial is one admission request a policy denied or warned about.
type Denial struct {
	Time      time.Time `json:"time"`
	User      string    `json:"user,omitempty"`
	Operation string    `json:"operation,omitempty"`
	Resource  Resource  `json:"resource"`
	Policy    string    `json:"policy"`
	// Action is enforce (denied) or warn.
	Action  policies.Action `json:"action"`
	Message string          `json:"message"`
	// Cluster and PolicySet are the line's: where, and by which policy
	// set, the request was judged.
	Cluster   string `json:"cluster,omitempty"`
	PolicySet string `json:"policySet,omitempty"`
}

// ReadDecisionLog adds the entries of a decision log (JSON lines, as
// `tollgate serve --decision-log` writes them) to d. A request counts as
// denied when it was not allowed, as warned when it was allowed with a
// finding of action warn; findings an exception waived count for neither.
// Malformed lines are counted and listed with their line numbers, and
// reading goes on; only a read error stops it.
func (d *Denials) ReadDecisionLog(r io.Reader, opts DecisionLogOptions) error {
	if opts.Examples <= 0 {
		opts.Examples = 3
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = 1 << 20
	}
	source := cmp.Or(opts.Source, "decision log")
	d.Sources = append(d.Sources, source)
	if d.From.IsZero() || (!opts.From.IsZero() && opts.From.Before(d.From)) {
		d.From = opts.From
	}
	if opts.To.After(d.To) {
		d.To = opts.To
	}
	index := map[string]int{}
	for i := range d.ByPolicy {
		index[d.ByPolicy[i].Policy] = i
	}
	br := bufio.NewReaderSize(r, 64<<10)
	chain := newChainCheck(source, opts.Key)
	line := 0
	bad := func(msg string) {
		chain.malformed(line)
		d.Malformed++
		if len(d.MalformedLines) < maxLineErrors {
			d.MalformedLines = append(d.MalformedLines, LineError{Source: source, Line: line, Error: msg})
		}
	}
	for {
		text, tooLong, err := readLine(br, opts.MaxLineBytes)
		if errors.Is(err, io.EOF) && len(text) == 0 && !tooLong {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: line %d: %w", source, line+1, err)
		}
		line++
		d.Lines++
		switch {
		case tooLong:
			bad(fmt.Sprintf("longer than %d bytes", opts.MaxLineBytes))
		case len(bytes.TrimSpace(text)) == 0:
			// Blank lines are harmless.
		default:
			var e decisionEntry
			if jerr := json.Unmarshal(text, &e); jerr != nil {
				bad("not a decision log entry: " + jerr.Error())
				break
			}
			if e.Record == "" && (e.Time.IsZero() || e.Allowed == nil) {
				bad("not a decision log entry: no time or allowed field")
				break
			}
			intact := chain.line(line, text, &e)
			switch {
			case e.Record == logchain.RecordGap:
				if d.inPeriod(e.Time, opts) {
					d.Lost += e.Lost
				}
			case e.Record != "":
			case !intact:
				d.Tampered++
			default:
				d.add(&e, opts, index)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	d.Integrity = append(d.Integrity, chain.result())
	slices.SortStableFunc(d.ByPolicy, func(a, b PolicyDenials) int {
		return cmp.Or(cmp.Compare(b.Denied+b.Warned, a.Denied+a.Warned), cmp.Compare(a.Policy, b.Policy))
	})
	return nil
}

func (d *Denials) inPeriod(t time.Time, opts DecisionLogOptions) bool {
	return (opts.From.IsZero() || !t.Before(opts.From)) && (opts.To.IsZero() || !t.After(opts.To))
}

func (d *Denials) add(e *decisionEntry, opts DecisionLogOptions, index map[string]int) {
	if !d.inPeriod(e.Time, opts) {
		d.OutsidePeriod++
		return
	}
	if e.DryRun {
		d.DryRun++
		return
	}
	if !e.Authenticated {
		d.Unauthenticated++
		return
	}
	d.Requests++
	d.collect(e)
	denied := !*e.Allowed
	warned := false
	// One count per policy per request, however many findings it had.
	counted := map[string]bool{}
	for i := range e.Findings {
		f := &e.Findings[i]
		if f.Waived() || counted[f.Policy] {
			continue
		}
		var action policies.Action
		switch {
		case f.Action == policies.ActionEnforce && denied:
			action = policies.ActionEnforce
		case f.Action == policies.ActionWarn:
			action = policies.ActionWarn
			warned = true
		default:
			continue
		}
		counted[f.Policy] = true
		j, ok := index[f.Policy]
		if !ok {
			j = len(d.ByPolicy)
			index[f.Policy] = j
			d.ByPolicy = append(d.ByPolicy, PolicyDenials{Policy: f.Policy})
		}
		p := &d.ByPolicy[j]
		p.Title = cmp.Or(p.Title, f.Title)
		for _, c := range f.Controls {
			if !slices.Contains(p.Controls, c) {
				p.Controls = append(p.Controls, c)
			}
		}
		if action == policies.ActionEnforce {
			p.Denied++
		} else {
			p.Warned++
		}
		p.Latest = keepLatest(p.Latest, Denial{
			Time: e.Time.UTC(), User: e.User, Operation: e.Operation,
			Resource: Resource{Kind: e.Kind, Namespace: e.Namespace, Name: e.Name},
			Policy:   f.Policy, Action: action, Message: f.Message,
			Cluster: e.Cluster, PolicySet: e.PolicySet,
		}, opts.Examples)
	}
	switch {
	case denied:
		d.Denied++
	case warned:
		d.Warned++
	}
	d.countCluster(e, denied, warned)
}

// countCluster counts a request toward its cluster. Clusters stays empty
// while no line names a cluster or a policy set.
func (d *Denials) countCluster(e *decisionEntry, denied, warned bool) {
	if e.Cluster == "" && e.PolicySet == "" && len(d.Clusters) == 0 {
		return
	}
	i, found := slices.BinarySearchFunc(d.Clusters, e.Cluster, func(c ClusterDecisions, name string) int { return cmp.Compare(c.Cluster, name) })
	if !found {
		// Requests before the first line that named a cluster were of
		// no cluster: count them under "".
		if len(d.Clusters) == 0 && d.Requests > 1 {
			d.Clusters = append(d.Clusters, ClusterDecisions{Requests: d.Requests - 1, Denied: d.Denied - boolInt(denied), Warned: d.Warned - boolInt(warned)})
			i, found = slices.BinarySearchFunc(d.Clusters, e.Cluster, func(c ClusterDecisions, name string) int { return cmp.Compare(c.Cluster, name) })
		}
		if !found {
			d.Clusters = slices.Insert(d.Clusters, i, ClusterDecisions{Cluster: e.Cluster})
		}
	}
	c := &d.Clusters[i]
	c.Requests++
	c.Denied += boolInt(denied)
	c.Warned += boolInt(warned)
	if e.PolicySet != "" {
		j, ok := slices.BinarySearch(c.PolicySets, e.PolicySet)
		switch {
		case ok:
		case len(c.PolicySets) < maxLineErrors:
			c.PolicySets = slices.Insert(c.PolicySets, j, e.PolicySet)
		default:
			c.MorePolicySets++
		}
	}
}

// keepLatest inserts x into list (newest first) and keeps n entries.
func keepLatest(list []Denial, x Denial, n int) []Denial {
	i, _ := slices.BinarySearchFunc(list, x, func(a, b Denial) int { return b.Time.Compare(a.Time) })
	list = slices.Insert(list, i, x)
	if len(list) > n {
		list = list[:n]
	}
	return list
}

// readLine reads one line without its newline. A line longer than max is
// consumed and reported as tooLong, without holding it in memory.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > max+1 { // +1: the newline
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if tooLong && errors.Is(err, io.EOF) {
			// The over-long last line still counts as a line.
			return nil, true, io.EOF
		}
		return line, tooLong, err
	}
}

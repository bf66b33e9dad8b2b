package compliance

import (
	"fmt"

	"github.com/tollgate-dev/tollgate/compliance/logchain"
)

// Integrity statuses of a decision log.
const (
	// IntegrityVerified: every line is in an unbroken chain that ends
	// with the server's end record.
	IntegrityVerified = "verified"
	// IntegrityOpen: the chain is unbroken but its last part has no end
	// record: the server is still writing it, or stopped without closing
	// it (a crash), or lines were removed from its end.
	IntegrityOpen = "verified, open"
	// IntegrityIncomplete: the chain is unbroken but the server recorded
	// entries it could not write (gap records).
	IntegrityIncomplete = "verified, entries lost"
	// IntegrityBroken: lines were edited, removed, inserted or reordered.
	IntegrityBroken = "broken"
	// IntegrityPartial: part of the log has no chain fields (written
	// before the chain existed, or inserted).
	IntegrityPartial = "partly verifiable"
	// IntegrityUnverifiable: no line has chain fields (a log written
	// before the chain existed).
	IntegrityUnverifiable = "not verifiable"
)

// LogIntegrity is the verification of one decision log's hash chain.
type LogIntegrity struct {
	Source string `json:"source"`
	// Status is one of the Integrity constants.
	Status string `json:"status"`
	// Chained counts lines in the chain; Unchained decision lines without
	// chain fields; Chains the start records.
	Chained   int `json:"chained"`
	Unchained int `json:"unchained"`
	Chains    int `json:"chains"`
	// Lost counts entries the server could not write (gap records).
	Lost int `json:"lost"`
	// Open says the last chain has no end record.
	Open bool `json:"open"`
	// Unkeyed says a keyed chain was read without its key: links were
	// checked, line hashes were not.
	Unkeyed bool `json:"unkeyed,omitempty"`
	// Problems lists what breaks the chain, each with its line; beyond
	// the first ones they are only counted in MoreProblems.
	Problems     []LineError `json:"problems,omitempty"`
	MoreProblems int         `json:"moreProblems,omitempty"`
}

// chainCheck verifies a log's chain one line at a time.
type chainCheck struct {
	res      LogIntegrity
	key      []byte
	alg      string // of the chain being read; "" before a start record
	started  bool   // a chained line was read
	lastLine int
	lastSeq  uint64
	lastHash string
	ended    int // line of the end record that closed the last chain; 0 if open
	breaks   int // problems other than gap records
	// torn are lines inside the chain that are not whole lines, not yet
	// accounted for: the next gap or end record may count them as cut
	// short by failed writes; otherwise they are damage.
	torn []int
}

func newChainCheck(source string, key []byte) *chainCheck {
	return &chainCheck{res: LogIntegrity{Source: source}, key: key}
}

func (c *chainCheck) problem(line int, format string, args ...any) {
	c.breaks++
	c.note(line, format, args...)
}

// note lists a line that does not break the chain (a gap record).
func (c *chainCheck) note(line int, format string, args ...any) {
	if len(c.res.Problems) == maxLineErrors {
		c.res.MoreProblems++
		return
	}
	c.res.Problems = append(c.res.Problems, LineError{Source: c.res.Source, Line: line, Error: fmt.Sprintf(format, args...)})
}

// line checks one parsed line (text is its bytes, e its fields) and
// reports whether it is intact: its own hash matches (or cannot be
// checked). Breaks in the links are problems of the log, not of the line.
func (c *chainCheck) line(n int, text []byte, e *decisionEntry) bool {
	content, sum, ok := logchain.SplitHash(text)
	if !ok {
		if c.started {
			c.problem(n, "line %d has no chain fields inside a chained log: inserted", n)
			return false
		}
		c.res.Unchained++
		return true
	}
	c.res.Chained++
	if e.Record == logchain.RecordStart {
		c.alg = e.Alg
		c.res.Chains++
	}
	intact := c.verifyHash(n, content, sum)
	c.settleTorn(n, e)
	switch {
	case !c.started && e.Record == logchain.RecordStart:
		// The file's first chained line anchors the chain.
		if c.res.Unchained > 0 && e.Prev != "" {
			c.problem(n, "line %d starts a chain linked to a line that is not the one before it", n)
		}
	case !c.started:
		c.problem(n, "line %d (sequence %d) is inside a chain whose start is not in this log: lines before it were removed, or the log was rotated by copying", n, e.Seq)
	case e.Record == logchain.RecordStart && e.Prev != "" && c.ended == 0:
		c.note(n, "line %d: the server restarted without ending the chain before it (a crash or a kill): entries being written then may be missing", n)
		c.checkLink(n, e)
	case e.Record == logchain.RecordStart && e.Prev == "":
		// A new chain not linked to the one before (a log on standard
		// output, restarted): sound only if the one before ended.
		if c.ended == 0 {
			c.problem(n, "line %d starts a new chain while the one before (to line %d) has no end record: lines removed from its end, or the server crashed", n, c.lastLine)
		}
		if e.Seq != 1 {
			c.problem(n, "line %d starts a chain at sequence %d, not 1", n, e.Seq)
		}
	case c.ended != 0 && e.Record != logchain.RecordStart:
		c.problem(n, "line %d follows the end of the chain (line %d) without a start record: appended", n, c.ended)
	default:
		c.checkLink(n, e)
	}
	c.started = true
	c.lastLine, c.lastSeq, c.lastHash = n, e.Seq, sum
	c.ended = 0
	switch e.Record {
	case logchain.RecordEnd:
		c.ended = n
		c.res.Lost += e.Lost
	case logchain.RecordGap:
		c.res.Lost += e.Lost
		c.note(n, "line %d: the server could not write %d entries from %s (gap record)", n, e.Lost, e.LostSince.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return intact
}

// checkLink checks that a line follows the one before it in the chain.
func (c *chainCheck) checkLink(n int, e *decisionEntry) {
	switch {
	case e.Seq > c.lastSeq+1:
		c.problem(n, "line %d: %d line(s) missing before it, or lines reordered (sequence jumps from %d to %d)", n, e.Seq-c.lastSeq-1, c.lastSeq, e.Seq)
	case e.Seq <= c.lastSeq:
		c.problem(n, "line %d: sequence %d comes after %d: a line inserted or lines reordered", n, e.Seq, c.lastSeq)
	case e.Prev != c.lastHash:
		c.problem(n, "line %d does not follow line %d: that line was replaced, or this one inserted", n, c.lastLine)
	}
}

// verifyHash checks a line's own hash by its chain's algorithm. A keyed
// chain read without the key cannot be checked; it is flagged once.
func (c *chainCheck) verifyHash(n int, content []byte, sum string) bool {
	switch {
	case c.alg == logchain.HMACSHA256 && len(c.key) == 0:
		c.res.Unkeyed = true
		return true
	case c.alg == logchain.HMACSHA256:
		if logchain.LineHash(c.key, content) == sum {
			return true
		}
	case c.alg == "":
		// Before a start record: either algorithm may apply.
		if logchain.LineHash(nil, content) == sum || (len(c.key) > 0 && logchain.LineHash(c.key, content) == sum) {
			return true
		}
	default:
		if logchain.LineHash(nil, content) == sum {
			return true
		}
	}
	c.problem(n, "line %d was edited: its hash does not match its content", n)
	return false
}

// malformed flags a line that is not JSON inside a chained log: a line
// cut short by a failed write or a truncation, or damaged.
func (c *chainCheck) malformed(n int) {
	if c.started {
		c.torn = append(c.torn, n)
	}
}

// settleTorn decides, at chained line n, about the lines before it that
// were not whole: as many as a gap or end record counts (its Torn) were
// cut short by the server's failed writes, which the record accounts for;
// the others are damage.
func (c *chainCheck) settleTorn(n int, e *decisionEntry) {
	accounted := 0
	if e.Record == logchain.RecordGap || e.Record == logchain.RecordEnd {
		accounted = e.Torn
	}
	for i, t := range c.torn {
		if i < accounted {
			c.note(t, "line %d: an entry cut short by a failed write, accounted for by the record on line %d", t, n)
			continue
		}
		c.problem(t, "line %d is not a whole log line: cut short (a failed write, a truncation) or damaged", t)
	}
	c.torn = c.torn[:0]
}

// result finishes the verification.
func (c *chainCheck) result() LogIntegrity {
	c.settleTorn(c.lastLine+1, &decisionEntry{})
	r := c.res
	r.Open = c.started && c.ended == 0
	switch {
	case r.Chained == 0:
		r.Status = IntegrityUnverifiable
	case c.breaks > 0:
		r.Status = IntegrityBroken
	case r.Unchained > 0:
		r.Status = IntegrityPartial
	case r.Lost > 0:
		r.Status = IntegrityIncomplete
	case r.Open:
		r.Status = IntegrityOpen
	default:
		r.Status = IntegrityVerified
	}
	return r
}

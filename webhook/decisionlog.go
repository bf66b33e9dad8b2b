package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/compliance/logchain"
	"github.com/tollgate-dev/tollgate/policies"
)

// DecisionEntry is one line of the decision log: what was asked, by whom,
// and what Tollgate answered. Auditors read it as evidence; entries of
// dry-run requests carry dryRun: true and are not evidence of anything that
// happened, and neither are entries of callers that were not authenticated
// (authenticated: false), which anyone who reaches the port can cause.
type DecisionEntry struct {
	Time        time.Time           `json:"time"`
	UID         string              `json:"uid"`
	Webhook     string              `json:"webhook"`
	User        string              `json:"user"`
	Groups      []string            `json:"groups,omitempty"`
	Operation   string              `json:"operation"`
	Kind        string              `json:"kind"`
	Resource    string              `json:"resource"`
	SubResource string              `json:"subResource,omitempty"`
	Namespace   string              `json:"namespace,omitempty"`
	Name        string              `json:"name,omitempty"`
	DryRun      bool                `json:"dryRun"`
	Allowed     bool                `json:"allowed"`
	Findings    []policies.Finding  `json:"findings,omitempty"`
	Errors      []string            `json:"errors,omitempty"`
	Injected    map[string][]string `json:"injected,omitempty"`
	PatchOps    int                 `json:"patchOps,omitempty"`
	Generation  int64               `json:"generation"`
	// Deployment is set when the request deployed: an admitted change to
	// a workload's pod template (see Reviewer.Validate).
	Deployment *Deployment `json:"deployment,omitempty"`
	// Authenticated says the caller presented a client certificate that
	// verified against the configured client CA with an allowed name
	// (Client); false when no client CA is configured.
	Authenticated bool   `json:"authenticated"`
	Client        string `json:"client,omitempty"`
	// Cluster names the cluster that decided (tollgate serve
	// --cluster-name; the log fills it in from DecisionLogOptions.Cluster),
	// and PolicySet the policy set that judged (review.Set.PolicySet), so
	// lines shipped from many clusters to one store still say where and
	// by what each decision was made. Both are covered by the line's hash.
	Cluster   string `json:"cluster,omitempty"`
	PolicySet string `json:"policySet,omitempty"`
}

// chainFields are the fields every line of the log carries: seq counts
// lines from 1 across the file, prev is the hash of the line before
// (empty on a file's first line), and the line's own hash comes last,
// computed over the bytes before it (see AppendHash).
type chainFields struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
}

// chainRecord is a start, end or gap line.
type chainRecord struct {
	Time   time.Time `json:"time"`
	Record string    `json:"record"`
	// Alg and Writer are set on a start record: the hash algorithm and
	// who writes the chain (host name and process id), so that several
	// replicas' logs can be told apart.
	Alg    string `json:"alg,omitempty"`
	Writer string `json:"writer,omitempty"`
	// Lost and LostSince are set on a gap record: entries not written,
	// and when the first of them was.
	Lost      int       `json:"lost,omitempty"`
	LostSince time.Time `json:"lostSince,omitzero"`
	// Torn, on a gap or end record, counts the lines a failed write cut
	// short since the last line written whole: fragments outside the
	// chain that the record accounts for, so a reader tells them from
	// damage.
	Torn int `json:"torn,omitempty"`
	chainFields
}

// DecisionLogOptions configure a chained decision log.
type DecisionLogOptions struct {
	// Key, when set, keys the line hashes (HMAC-SHA256); keep it in a
	// Secret and give it to `tollgate report --decision-log-key-file`.
	Key []byte
	// Prev and Seq continue an existing file: the hash and sequence
	// number of its last line (see OpenDecisionLog).
	Prev string
	Seq  uint64
	// Writer names the process on the start record (default host:pid).
	Writer string
	// Destination says where the lines go ("stdout", "file"), for the
	// audit's evidence that decisions are logged.
	Destination string
	// Cluster names the cluster on every entry that does not name one
	// (tollgate serve --cluster-name).
	Cluster string
	// Now is the clock of chain records (default time.Now).
	Now func() time.Time
}

// DecisionLog writes entries as JSON lines chained by hashes: each line
// carries a sequence number, the hash of the line before and its own hash,
// so `tollgate report` finds a line edited, removed, inserted or
// reordered. The first line a process writes is a start record; Close
// writes an end record.
//
// A write that fails (a full disk) does not stop admission: the entry is
// lost, counted, and the error returned to the caller, which counts it in
// tollgate_decision_log_errors_total. When writing works again, a gap
// record saying how many entries were lost, and since when, comes first,
// so the report shows the gap instead of silently missing evidence. A
// partly written line is ended with a newline before the next, so it
// stays one malformed line outside the chain.
//
// It is safe for concurrent use.
type DecisionLog struct {
	mu        sync.Mutex
	w         io.Writer
	opts      DecisionLogOptions
	started   bool
	seq       uint64
	prev      string
	lost      int
	lostSince time.Time
	torn      int  // lines cut short since the last line written whole
	partial   bool // the last write stopped mid-line
	closed    bool
}

// Facts describes the log for the audit's ClusterFacts: whether decisions
// are logged, where, and that the lines are chained (keyed when a key is
// set). A nil log is a log that is off.
func (l *DecisionLog) Facts() map[string]any {
	if l == nil || l.w == nil {
		return map[string]any{"enabled": false}
	}
	return map[string]any{"enabled": true, "destination": l.opts.Destination, "chained": true, "keyed": len(l.opts.Key) > 0}
}

// NewDecisionLog logs to w, starting a new chain; nil logs nothing.
func NewDecisionLog(w io.Writer) *DecisionLog {
	return NewChainedDecisionLog(w, DecisionLogOptions{})
}

// NewChainedDecisionLog logs to w with opts; nil w logs nothing.
func NewChainedDecisionLog(w io.Writer, opts DecisionLogOptions) *DecisionLog {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Writer == "" {
		host, _ := os.Hostname()
		opts.Writer = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	return &DecisionLog{w: w, opts: opts, seq: opts.Seq, prev: opts.Prev}
}

// OpenDecisionLog opens (or creates) a decision log file for appending
// and continues its chain: the new start record links to the hash of the
// file's last line, so a chain removed from the middle of a file shows.
// A last line cut short by a crash is ended with a newline first.
func OpenDecisionLog(path string, opts DecisionLogOptions) (*DecisionLog, *os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	lines, complete, err := lastLines(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("reading the end of %s: %w", path, err)
	}
	// The chain continues from the last whole chained line; a line cut
	// short after it stays outside the chain.
	for i := len(lines) - 1; i >= 0; i-- {
		content, sum, ok := logchain.SplitHash(lines[i])
		if !ok {
			continue
		}
		var c chainFields
		if json.Unmarshal(append(bytes.Clone(content), '}'), &c) == nil {
			opts.Prev, opts.Seq = sum, c.Seq
			break
		}
	}
	l := NewChainedDecisionLog(f, opts)
	l.partial = !complete
	return l, f, nil
}

// lastLines reads the last lines of f (at most its last 4 MiB), without
// newlines, and whether the file ends with one.
func lastLines(f *os.File) ([][]byte, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	size := fi.Size()
	if size == 0 {
		return nil, true, nil
	}
	start := max(size-4<<20, 0)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	complete := buf[len(buf)-1] == '\n'
	return bytes.Split(bytes.TrimSuffix(buf, []byte("\n")), []byte("\n")), complete, nil
}

// Write appends one entry (after the start record, and a gap record if
// entries were lost).
func (l *DecisionLog) Write(e *DecisionEntry) error {
	if l == nil || l.w == nil {
		return nil
	}
	if e.Cluster == "" && l.opts.Cluster != "" {
		named := *e
		named.Cluster = l.opts.Cluster
		e = &named
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		if err := l.writeLine(record(chainRecord{Time: l.opts.Now().UTC(), Record: logchain.RecordStart, Alg: l.alg(), Writer: l.opts.Writer})); err != nil {
			l.lose(e.Time)
			return err
		}
		l.started = true
	}
	if l.lost > 0 {
		if err := l.writeLine(record(chainRecord{Time: l.opts.Now().UTC(), Record: logchain.RecordGap, Lost: l.lost, LostSince: l.lostSince, Torn: l.torn})); err != nil {
			l.lose(e.Time)
			return err
		}
		l.lost, l.lostSince, l.torn = 0, time.Time{}, 0
	}
	if err := l.writeLine(func(c chainFields) any { return &entryLine{DecisionEntry: e, chainFields: c} }); err != nil {
		l.lose(e.Time)
		return err
	}
	return nil
}

// Lost is the number of entries lost since the last line written.
func (l *DecisionLog) Lost() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Close writes the end record of the chain (when one was started). It
// does not close the underlying writer.
func (l *DecisionLog) Close() error {
	if l == nil || l.w == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started || l.closed {
		return nil
	}
	l.closed = true
	return l.writeLine(record(chainRecord{Time: l.opts.Now().UTC(), Record: logchain.RecordEnd, Lost: l.lost, LostSince: l.lostSince, Torn: l.torn}))
}

func (l *DecisionLog) alg() string {
	if len(l.opts.Key) > 0 {
		return logchain.HMACSHA256
	}
	return logchain.SHA256
}

func (l *DecisionLog) lose(at time.Time) {
	if l.lost == 0 {
		l.lostSince = at.UTC()
	}
	l.lost++
}

// entryLine is a decision with its chain fields.
type entryLine struct {
	*DecisionEntry
	chainFields
}

// writeLine encodes the line build makes with the next sequence number
// and the previous hash, appends its own hash and writes it in one call.
// The chain advances only when the whole line was written.
func (l *DecisionLog) writeLine(build func(c chainFields) any) error {
	c := chainFields{Seq: l.seq + 1, Prev: l.prev}
	b, err := json.Marshal(build(c))
	if err != nil {
		return fmt.Errorf("encoding decision log line: %w", err)
	}
	content := b[:len(b)-1]
	sum := logchain.LineHash(l.opts.Key, content)
	out := make([]byte, 0, len(b)+len(logchain.HashField)+logchain.HashLen+4)
	if l.partial {
		out = append(out, '\n')
	}
	out = append(out, content...)
	out = append(out, logchain.HashField...)
	out = append(out, sum...)
	out = append(out, '"', '}', '\n')
	n, err := l.w.Write(out)
	if err != nil {
		// Whatever part of the line was written is a line cut short
		// (counted for the next gap record); the next write ends it
		// first. A leading newline that ended an earlier one is not.
		start := 0
		if l.partial {
			start = 1
		}
		if n > start {
			l.torn++
		}
		l.partial = n > start || (l.partial && n == 0)
		return fmt.Errorf("writing decision log: %w", err)
	}
	l.partial = false
	l.seq, l.prev = c.Seq, sum
	return nil
}

// record builds a chain record line.
func record(r chainRecord) func(c chainFields) any {
	return func(c chainFields) any {
		r.chainFields = c
		return &r
	}
}

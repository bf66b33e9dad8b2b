package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/policies"
)

// DecisionEntry is one line of the decision log: what was asked, by whom,
// and what Tollgate answered. Auditors read it as evidence; entries of
// dry-run requests carry dryRun: true and are not evidence of anything that
// happened.
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
}

// DecisionLog writes entries as JSON lines. It is safe for concurrent use;
// a write error is returned to the caller (which logs it) and the next
// entry is still attempted.
type DecisionLog struct {
	mu sync.Mutex
	w  io.Writer
}

// NewDecisionLog logs to w; nil logs nothing.
func NewDecisionLog(w io.Writer) *DecisionLog { return &DecisionLog{w: w} }

// Write appends one entry.
func (l *DecisionLog) Write(e *DecisionEntry) error {
	if l == nil || l.w == nil {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding decision log entry: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(b); err != nil {
		return fmt.Errorf("writing decision log: %w", err)
	}
	return nil
}

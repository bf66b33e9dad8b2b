package policies

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Exception waives some policies for some objects until it expires. It is
// the engine's view of a PolicyException object: the webhook, the audit and
// the reports all apply it the same way, and every finding it waives
// carries a reference to it, so the waiver is evidence rather than a hole.
type Exception struct {
	// Namespace and Name identify the PolicyException object.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Policies are the policy ids waived.
	Policies []string `json:"policies"`
	// Match selects the objects waived.
	Match ExceptionMatch `json:"match"`
	// Reason, Ticket and Approver say why, where it was agreed and who
	// agreed to it.
	Reason   string `json:"reason"`
	Ticket   string `json:"ticket,omitempty"`
	Approver string `json:"approver"`
	// Expires is when the exception stops counting.
	Expires time.Time `json:"expires"`
}

// ExceptionMatch selects objects. Every field given must match; an empty
// field matches anything. To cover a Deployment and the ReplicaSets and
// Pods it creates, match by a name glob ("legacy-app*") or by a label the
// pod template carries rather than by kind.
type ExceptionMatch struct {
	// Namespaces are names or globs; cluster-scoped objects have "".
	Namespaces []string `json:"namespaces,omitempty"`
	// Kinds are "Kind" or "group/Kind", as in policy metadata.
	Kinds []string `json:"kinds,omitempty"`
	// Names are object names or globs.
	Names []string `json:"names,omitempty"`
	// Labels must all be present on the object with these values; a key
	// its namespace sets is read from the namespace (the label of record).
	Labels map[string]string `json:"labels,omitempty"`
}

// String renders the match for people ("namespaces legacy-*; kinds
// Deployment; labels app=web"), "" when it matches every object.
func (m ExceptionMatch) String() string {
	var parts []string
	if len(m.Namespaces) > 0 {
		parts = append(parts, "namespaces "+strings.Join(m.Namespaces, ", "))
	}
	if len(m.Kinds) > 0 {
		parts = append(parts, "kinds "+strings.Join(m.Kinds, ", "))
	}
	if len(m.Names) > 0 {
		parts = append(parts, "names "+strings.Join(m.Names, ", "))
	}
	if len(m.Labels) > 0 {
		ls := make([]string, 0, len(m.Labels))
		for k, v := range m.Labels {
			ls = append(ls, k+"="+v)
		}
		slices.Sort(ls)
		parts = append(parts, "labels "+strings.Join(ls, ","))
	}
	return strings.Join(parts, "; ")
}

// ExceptionRef is what a waived finding records of the exception.
type ExceptionRef struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Reason    string    `json:"reason"`
	Ticket    string    `json:"ticket,omitempty"`
	Approver  string    `json:"approver"`
	Expires   time.Time `json:"expires"`
}

// Validate names the field of every problem, for the object's status.
func (x *Exception) Validate() error {
	var errs []error
	if len(x.Policies) == 0 {
		errs = append(errs, fmt.Errorf("spec.policies: at least one policy id is required"))
	}
	for i, p := range x.Policies {
		if p == "" || p == "*" {
			errs = append(errs, fmt.Errorf("spec.policies[%d]: name a policy id; wildcards are not accepted", i))
		}
	}
	if x.Reason == "" {
		errs = append(errs, fmt.Errorf("spec.reason: required"))
	}
	if x.Approver == "" {
		errs = append(errs, fmt.Errorf("spec.approver: required"))
	}
	if x.Expires.IsZero() {
		errs = append(errs, fmt.Errorf("spec.expiry: required"))
	}
	for field, pats := range map[string][]string{"namespaces": x.Match.Namespaces, "names": x.Match.Names} {
		for i, p := range pats {
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("spec.match.%s[%d]: %q is not a glob", field, i, p))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("exception %s/%s: %w", x.Namespace, x.Name, joinErrors(errs))
}

// Active reports whether the exception counts at time now.
func (x *Exception) Active(now time.Time) bool { return now.Before(x.Expires) }

// Covers reports whether the exception waives policy for the input's object.
func (x *Exception) Covers(policy string, in *Input) bool {
	if !slices.Contains(x.Policies, policy) {
		return false
	}
	obj := in.Object
	if obj == nil {
		obj = in.OldObject
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		name, _ = meta["generateName"].(string)
	}
	m := x.Match
	if len(m.Namespaces) > 0 && !matchNamespace(m.Namespaces, in.ObjectNamespace()) {
		return false
	}
	if len(m.Kinds) > 0 && !matchKinds(m.Kinds, in.Kind) {
		return false
	}
	if len(m.Names) > 0 && !matchNamespace(m.Names, name) {
		return false
	}
	// Labels are read as they are charged: the namespace's value for each
	// key the namespace sets, so a workload cannot label itself into an
	// exception granted to another team's workloads.
	labels, _ := meta["labels"].(map[string]any)
	nsMeta, _ := in.Namespace["metadata"].(map[string]any)
	nsLabels, _ := nsMeta["labels"].(map[string]any)
	for k, v := range m.Labels {
		got := labels[k]
		if nv, _ := nsLabels[k].(string); nv != "" {
			got = nv
		}
		if got != v {
			return false
		}
	}
	return true
}

// ApplyExceptions marks the findings that an active exception waives. A
// waived finding stays in the decision (reports show it, with who waived
// it) but no longer denies or warns.
func (d *Decision) ApplyExceptions(in *Input, exceptions []Exception, now time.Time) {
	for i := range d.Findings {
		f := &d.Findings[i]
		for j := range exceptions {
			x := &exceptions[j]
			if !x.Active(now) || !x.Covers(f.Policy, in) {
				continue
			}
			f.Exception = &ExceptionRef{
				Namespace: x.Namespace, Name: x.Name, Reason: x.Reason,
				Ticket: x.Ticket, Approver: x.Approver, Expires: x.Expires,
			}
			break
		}
	}
}

func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

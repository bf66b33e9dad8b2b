package compliance

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tollgate-dev/tollgate/policies"
)

// Framework is a compliance framework as a data file describes it: its
// controls and, for each, the policies whose results evidence it.
//
// A data file is YAML:
//
//	id: cis                          # short id, used by --framework and in policy metadata
//	name: CIS Kubernetes Benchmark
//	version: v1.10.0 (section 5)
//	url: https://www.cisecurity.org/benchmark/kubernetes
//	description: ...
//	controls:
//	  - id: "5.2.2"
//	    group: 5.2 Pod Security Standards
//	    title: Minimize the admission of privileged containers
//	    description: No container runs with securityContext.privileged.
//	    policies: [pss-baseline-privileged]   # ids, or prefixes ending in * ("image-policy/*")
//	    remediation: Remove securityContext.privileged or set it to false.
//	  - id: "5.1.1"
//	    title: Ensure that the cluster-admin role is only used where required
//	    manual: true                          # no policy evidences it: shown as MANUAL, never passed
//	    reason: Bindings are reviewed ...     # why it is reviewed by hand; required when manual
type Framework struct {
	ID          string    `json:"id" yaml:"id"`
	Name        string    `json:"name" yaml:"name"`
	Version     string    `json:"version" yaml:"version"`
	URL         string    `json:"url,omitempty" yaml:"url"`
	Description string    `json:"description,omitempty" yaml:"description"`
	Controls    []Control `json:"controls" yaml:"controls"`
}

// Control is one control of a framework.
type Control struct {
	ID string `json:"id" yaml:"id"`
	// Group is the section the control belongs to ("5.2 Pod Security Standards").
	Group       string `json:"group,omitempty" yaml:"group"`
	Title       string `json:"title" yaml:"title"`
	Description string `json:"description,omitempty" yaml:"description"`
	// Policies are the policy ids whose results evidence the control, or
	// prefixes ending in "*" that match a family of ids ("image-policy/*"
	// for image signature findings, "budget/*" for budget findings).
	Policies []string `json:"policies,omitempty" yaml:"policies"`
	// Remediation points at what to do when the control fails.
	Remediation string `json:"remediation,omitempty" yaml:"remediation"`
	// Manual marks a control no policy evidences: it is reviewed by hand
	// and shown as MANUAL, never as passed.
	Manual bool `json:"manual,omitempty" yaml:"manual"`
	// Reason says why a manual control is reviewed by hand, so that an
	// auditor reads why no policy evidences it. Required when Manual,
	// forbidden otherwise.
	Reason string `json:"reason,omitempty" yaml:"reason"`
}

// Evidences reports whether the control lists the policy, by id or by a
// prefix pattern.
func (c *Control) Evidences(policy string) bool {
	for _, p := range c.Policies {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(policy, prefix) {
				return true
			}
		} else if p == policy {
			return true
		}
	}
	return false
}

// Covers reports whether a result counts toward the control of framework
// fw: Tollgate results of a policy the control lists, and results of any
// source whose controls name it.
func (c *Control) Covers(fw string, r *Result) bool {
	for _, rc := range r.Controls {
		if rc.Framework == fw && rc.ID == c.ID {
			return true
		}
	}
	return r.Source == SourceTollgate && c.Evidences(r.Policy)
}

// Control returns the framework's control with the id, or nil.
func (f *Framework) Control(id string) *Control {
	for i := range f.Controls {
		if f.Controls[i].ID == id {
			return &f.Controls[i]
		}
	}
	return nil
}

// Validate names the field of every problem: ids present and unique,
// titles present, and a control either manual with a reason or evidenced
// by policies, never both.
func (f *Framework) Validate() error {
	var errs []error
	switch {
	case f.ID == "":
		errs = append(errs, errors.New("id: required"))
	case strings.ContainsAny(f.ID, ":, \t/"):
		errs = append(errs, fmt.Errorf("id: %q may not contain ':', ',', '/' or spaces", f.ID))
	}
	if f.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	if len(f.Controls) == 0 {
		errs = append(errs, errors.New("controls: at least one control is required"))
	}
	seen := map[string]int{}
	for i := range f.Controls {
		c := &f.Controls[i]
		at := fmt.Sprintf("controls[%d]", i)
		if c.ID != "" {
			at += fmt.Sprintf(" (%s)", c.ID)
		}
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("%s.id: required", at))
		case strings.ContainsAny(c.ID, ", \t"):
			errs = append(errs, fmt.Errorf("%s.id: %q may not contain ',' or spaces", at, c.ID))
		default:
			if j, dup := seen[c.ID]; dup {
				errs = append(errs, fmt.Errorf("%s.id: duplicate of controls[%d]", at, j))
			}
			seen[c.ID] = i
		}
		if c.Title == "" {
			errs = append(errs, fmt.Errorf("%s.title: required", at))
		}
		switch {
		case c.Manual && len(c.Policies) > 0:
			errs = append(errs, fmt.Errorf("%s.policies: a manual control lists no policies (drop manual: true, or the policies)", at))
		case !c.Manual && len(c.Policies) == 0:
			errs = append(errs, fmt.Errorf("%s.policies: list the policies that evidence the control, or set manual: true", at))
		}
		switch {
		case c.Manual && strings.TrimSpace(c.Reason) == "":
			errs = append(errs, fmt.Errorf("%s.reason: required for a manual control: say why it is reviewed by hand", at))
		case !c.Manual && c.Reason != "":
			errs = append(errs, fmt.Errorf("%s.reason: only a manual control has a reason (drop it, or set manual: true)", at))
		}
		for j, p := range c.Policies {
			if p == "" || p == "*" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
				errs = append(errs, fmt.Errorf("%s.policies[%d]: %q is not a policy id or a prefix ending in *", at, j, p))
			}
		}
	}
	return errors.Join(errs...)
}

// Size limits for framework data: a file is a few KiB.
const (
	maxFrameworkFileBytes = 1 << 20
	maxFrameworkFiles     = 100
)

//go:embed frameworks/*.yaml
var builtinFS embed.FS

// Builtin returns the frameworks embedded in the binary: cis, nsa, pss and
// soc2, in that order.
func Builtin() ([]Framework, error) {
	sub, err := fs.Sub(builtinFS, "frameworks")
	if err != nil {
		return nil, err
	}
	return LoadFrameworks(sub)
}

// LoadFrameworks reads every *.yaml and *.yml file at the top of fsys as a
// framework, sorted by id. Unknown fields, invalid controls and two files
// with one id are errors naming the file and the field.
func LoadFrameworks(fsys fs.FS) ([]Framework, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("reading frameworks: %w", err)
	}
	var out []Framework
	files := map[string]string{}
	var errs []error
	n := 0
	for _, e := range entries {
		ext := path.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		if n++; n > maxFrameworkFiles {
			return nil, fmt.Errorf("reading frameworks: more than %d files", maxFrameworkFiles)
		}
		fw, err := loadFramework(fsys, e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, dup := files[fw.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: id: framework %q is also defined in %s", e.Name(), fw.ID, prev))
			continue
		}
		files[fw.ID] = e.Name()
		out = append(out, fw)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Framework) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func loadFramework(fsys fs.FS, name string) (Framework, error) {
	var fw Framework
	f, err := fsys.Open(name)
	if err != nil {
		return fw, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFrameworkFileBytes+1))
	if err != nil {
		return fw, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxFrameworkFileBytes {
		return fw, fmt.Errorf("%s: over the %d byte limit", name, maxFrameworkFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fw); err != nil {
		if errors.Is(err, io.EOF) {
			return fw, fmt.Errorf("%s: empty file", name)
		}
		return fw, fmt.Errorf("%s: %w", name, err)
	}
	if err := fw.Validate(); err != nil {
		return fw, fmt.Errorf("%s: %w", name, prefixLines(err))
	}
	return fw, nil
}

// prefixLines keeps a joined error readable after a "file: " prefix.
func prefixLines(err error) error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) && len(j.Unwrap()) > 1 {
		return fmt.Errorf("%d problems:\n  %s", len(j.Unwrap()), strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return err
}

// MergeFrameworks returns base with each framework of override replacing
// the one of base with the same id, and the others added, sorted by id.
func MergeFrameworks(base, override []Framework) []Framework {
	out := slices.Clone(base)
	for _, o := range override {
		i := slices.IndexFunc(out, func(f Framework) bool { return f.ID == o.ID })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b Framework) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// SelectFrameworks picks frameworks by id: "all" (or nothing) selects every
// one; several ids may be given comma-separated. An unknown id is an error
// that lists the known ones.
func SelectFrameworks(all []Framework, names ...string) ([]Framework, error) {
	var ids []string
	for _, n := range names {
		for _, s := range strings.Split(n, ",") {
			if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
				ids = append(ids, s)
			}
		}
	}
	if len(ids) == 0 || slices.Contains(ids, "all") {
		return all, nil
	}
	var out []Framework
	for _, id := range ids {
		i := slices.IndexFunc(all, func(f Framework) bool { return f.ID == id })
		if i < 0 {
			known := make([]string, len(all))
			for j := range all {
				known[j] = all[j].ID
			}
			return nil, fmt.Errorf("unknown framework %q (want %s or all)", id, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(out, func(f Framework) bool { return f.ID == id }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// ControlsOf returns the controls of the frameworks that the policy's
// results count toward: those it declares and those whose data lists it.
func ControlsOf(fws []Framework, policy string, declared []policies.Control) []policies.Control {
	out := slices.Clone(declared)
	for i := range fws {
		for j := range fws[i].Controls {
			c := &fws[i].Controls[j]
			pc := policies.Control{Framework: fws[i].ID, ID: c.ID}
			if c.Evidences(policy) && !slices.Contains(out, pc) {
				out = append(out, pc)
			}
		}
	}
	return out
}

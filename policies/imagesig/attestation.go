package imagesig

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// attestation is a compiled attestation requirement.
type attestation struct {
	name, predicateType string
	policy              *rego.PreparedEvalQuery // nil: a verified attestation of the type is enough
}

// maxDenied bounds the messages one attestation reports.
const maxDenied = 20

// predicateURI turns a predicate type as written in a policy into the URI
// matched exactly: cosign's short names (`cosign attest --type`) mean what
// they mean to cosign; anything else must be an absolute URI.
func predicateURI(t string) (string, bool) {
	switch t {
	case "custom":
		return "https://cosign.sigstore.dev/attestation/v1", true
	case "vuln":
		return "https://cosign.sigstore.dev/attestation/vuln/v1", true
	case "slsaprovenance", "slsaprovenance02":
		return "https://slsa.dev/provenance/v0.2", true
	case "slsaprovenance1":
		return "https://slsa.dev/provenance/v1", true
	case "spdx", "spdxjson":
		return "https://spdx.dev/Document", true
	case "cyclonedx":
		return "https://cyclonedx.org/bom", true
	case "link":
		return "https://in-toto.io/Link/v1", true
	case "openvex":
		return "https://openvex.dev/ns", true
	}
	u, err := url.Parse(t)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return "", false
	}
	return t, true
}

func (c *compiler) attestation(at string, a v1alpha1.Attestation) (attestation, bool) {
	before := len(c.errs)
	out := attestation{name: a.Name}
	if a.Name == "" {
		c.fail("%s.name: required", at)
	}
	pt, ok := predicateURI(a.PredicateType)
	if !ok {
		c.fail("%s.predicateType: %q: want a URI (https://slsa.dev/provenance/v1) or one of vuln, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, link, openvex, custom", at, a.PredicateType)
	}
	out.predicateType = pt
	if a.Policy != "" {
		out.policy = c.rego(at+".policy", a.Policy)
	}
	return out, len(c.errs) == before
}

// rego compiles an attestation policy: one module defining the set deny,
// with no builtin that reaches the network or the process.
func (c *compiler) rego(at, src string) *rego.PreparedEvalQuery {
	mod, err := ast.ParseModuleWithOpts(at, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		c.fail("%s", regoError(err))
		return nil
	}
	if mod == nil {
		c.fail("%s: no package declaration", at)
		return nil
	}
	hasDeny := false
	for _, r := range mod.Rules {
		if r.Head.Ref().String() != "deny" {
			continue
		}
		if r.Head.RuleKind() != ast.MultiValue {
			c.fail("%s:%d: deny must be a set of messages (deny contains msg if {...})", at, r.Location.Row)
			return nil
		}
		hasDeny = true
	}
	if !hasDeny {
		c.fail("%s: defines no deny rule (deny contains msg if {...})", at)
		return nil
	}
	q, err := rego.New(
		rego.ParsedModule(mod),
		rego.Query(mod.Package.Path.String()+".deny"),
		rego.Capabilities(c.capabilities()),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(c.ctx)
	if err != nil {
		c.fail("%s", regoError(err))
		return nil
	}
	return &q
}

// capabilities are OPA's builtins less those that reach out (http.send,
// net.lookup_ip_addr) or read the process (opa.runtime): a policy over an
// attestation judges what the attestation says, and nothing else.
func (c *compiler) capabilities() *ast.Capabilities {
	if c.caps == nil {
		caps := ast.CapabilitiesForThisVersion()
		caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
			switch b.Name {
			case "http.send", "net.lookup_ip_addr", "opa.runtime":
				return true
			}
			return false
		})
		caps.AllowNet = []string{}
		c.caps = caps
	}
	return c.caps
}

// regoError lists OPA's errors with their line: the file name is the
// field path (spec.images[0].authorities[0].attestations[0].policy:3).
func regoError(err error) string {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return err.Error()
	}
	msgs := make([]string, 0, len(errs))
	for _, e := range errs {
		loc := ""
		if e.Location != nil {
			loc = fmt.Sprintf("%s:%d: ", e.Location.File, e.Location.Row)
		}
		msgs = append(msgs, loc+e.Code+": "+e.Message)
	}
	return strings.Join(msgs, "; ")
}

// statement is the in-toto statement a verified attestation carries.
type statement struct {
	PredicateType string          `json:"predicateType"`
	Subject       json.RawMessage `json:"subject"`
	Predicate     json.RawMessage `json:"predicate"`
}

func parseStatement(att oci.Signature) (statement, error) {
	payload, err := att.Payload()
	if err != nil {
		return statement{}, err
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(payload, &env); err != nil {
		return statement{}, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	body, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return statement{}, fmt.Errorf("DSSE payload: %w", err)
	}
	var st statement
	if err := json.Unmarshal(body, &st); err != nil {
		return statement{}, fmt.Errorf("not an in-toto statement: %w", err)
	}
	return st, nil
}

// evaluation is what an attestation policy sees besides the statement.
type evaluation struct {
	now     time.Time
	timeout time.Duration
}

// evaluate runs the policy over one statement and returns its deny
// messages. An error means no verdict: the policy did not finish in time.
func (a *attestation) evaluate(ctx context.Context, st statement, ev evaluation) ([]string, error) {
	if a.policy == nil {
		return nil, nil
	}
	input := map[string]any{
		"predicateType": st.PredicateType,
		"now":           ev.now.UTC().Format(time.RFC3339),
	}
	for k, raw := range map[string]json.RawMessage{"predicate": st.Predicate, "subject": st.Subject} {
		var v any
		if len(raw) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				return []string{fmt.Sprintf("the statement's %s is not JSON: %v", k, err)}, nil
			}
		}
		input[k] = v
	}
	ctx, cancel := context.WithTimeout(ctx, ev.timeout)
	defer cancel()
	rs, err := a.policy.Eval(ctx, rego.EvalInput(input))
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("the policy of attestation %s did not finish within %s", a.name, ev.timeout)
	case err != nil:
		// A builtin error (a malformed date, say) is a verdict: the
		// predicate does not pass.
		return []string{"policy error: " + trim(err.Error())}, nil
	case len(rs) == 0 || len(rs[0].Expressions) == 0:
		return nil, nil
	}
	set, _ := rs[0].Expressions[0].Value.([]any)
	msgs := make([]string, 0, len(set))
	for _, m := range set {
		if s, ok := m.(string); ok {
			msgs = append(msgs, s)
			continue
		}
		b, _ := json.Marshal(m)
		msgs = append(msgs, string(b))
	}
	sort.Strings(msgs)
	return msgs, nil
}

// verifyAttestations checks each attestation the authority requires: a
// verified attestation of its predicate type that passes its policy
// (any one of several, as a new scan passes where an old one may not).
// The error is for an undecidable verdict only.
func (a *authority) verifyAttestations(ctx context.Context, atts attached, h v1.Hash, ev evaluation) ([]AttestationResult, bool, error) {
	results := make([]AttestationResult, len(a.attestations))
	for i, want := range a.attestations {
		results[i] = AttestationResult{Authority: a.name, Name: want.name, PredicateType: want.predicateType}
	}
	failAll := func(reason string) ([]AttestationResult, bool, error) {
		for i := range results {
			results[i].Reason = reason
		}
		return results, false, nil
	}
	switch {
	case atts.problem != "":
		return failAll(atts.problem)
	case len(atts.list) == 0:
		return failAll("no attestations found")
	}
	co := a.check
	co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	verified, _, err := cosign.VerifyImageAttestation(ctx, listed{list: atts.list}, h, &co)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		var problems []string
		for _, att := range atts.list {
			if a.keyless == nil {
				problems = appendNew(problems, "none is signed by its key for this digest")
			} else {
				problems = appendNew(problems, a.keyless.explain(att, &co, err))
			}
		}
		return failAll("no attestation is the authority's: " + strings.Join(problems, "; "))
	}
	var statements []statement
	var types []string
	for _, att := range verified {
		st, err := parseStatement(att)
		if err != nil {
			continue
		}
		statements = append(statements, st)
		types = appendNew(types, st.PredicateType)
	}
	all := true
	for i, want := range a.attestations {
		found := false
		for _, st := range statements {
			if st.PredicateType != want.predicateType {
				continue
			}
			found = true
			denied, err := want.evaluate(ctx, st, ev)
			if err != nil {
				return nil, false, err
			}
			if len(denied) == 0 {
				results[i].Passed, results[i].Denied = true, nil
				break
			}
			for _, d := range denied {
				if len(results[i].Denied) < maxDenied {
					results[i].Denied = appendNew(results[i].Denied, d)
				}
			}
		}
		if !found {
			results[i].Reason = fmt.Sprintf("no attestation of type %s (the authority's are of types %s)", want.predicateType, strings.Join(types, ", "))
		}
		all = all && results[i].Passed
	}
	return results, all, nil
}

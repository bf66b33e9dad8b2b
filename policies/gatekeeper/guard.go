package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/open-policy-agent/frameworks/constraint/pkg/client/drivers"
	"github.com/open-policy-agent/frameworks/constraint/pkg/client/reviews"
	"github.com/open-policy-agent/frameworks/constraint/pkg/types"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// guard wraps a driver of the constraint client. The client decides which
// constraints match a review and hands exactly those to the drivers'
// Query; the guard is where that decision becomes visible, and where one
// constraint's failure is kept from the others:
//
//   - it records, in the review's probe, the constraints it is given (they
//     matched: Decision.Applied);
//   - a Query that errors or panics is retried one constraint at a time,
//     so only the failing constraints are lost;
//   - a result that is an evaluation error rather than a violation (the
//     drivers report both as results, as Gatekeeper fails closed) is taken
//     out and recorded as that constraint's error.
type guard struct {
	drivers.Driver
	// failure reports whether a result is an evaluation error rather than
	// a violation, and if so says what went wrong.
	failure func(*types.Result) (string, bool)
}

var _ drivers.Driver = (*guard)(nil)

// probeKey finds the review's probe in the context of Query. The probe is
// per review, not a dependency: the client passes the context through to
// its drivers untouched, and nothing else carries per-review state there.
type probeKey struct{}

// probe collects what the guards saw during one review.
type probe struct {
	mu      sync.Mutex
	matched map[drivers.ConstraintKey]bool
	errs    map[drivers.ConstraintKey]error
}

func newProbe() *probe {
	return &probe{matched: map[drivers.ConstraintKey]bool{}, errs: map[drivers.ConstraintKey]error{}}
}

func (p *probe) match(cs []*unstructured.Unstructured) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.matched[drivers.ConstraintKeyFrom(c)] = true
	}
}

func (p *probe) fail(c *unstructured.Unstructured, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := drivers.ConstraintKeyFrom(c)
	if p.errs[key] == nil {
		p.errs[key] = err
	}
}

// Query implements drivers.Driver.
func (g *guard) Query(ctx context.Context, target string, constraints []*unstructured.Unstructured, review any, opts ...reviews.ReviewOpt) (*drivers.QueryResponse, error) {
	p, _ := ctx.Value(probeKey{}).(*probe)
	if p == nil {
		return g.Driver.Query(ctx, target, constraints, review, opts...)
	}
	p.match(constraints)
	resp, err := g.query(ctx, target, constraints, review, opts)
	if err == nil {
		return g.sift(ctx, p, resp), nil
	}
	if len(constraints) == 1 {
		p.fail(constraints[0], err)
		return &drivers.QueryResponse{}, nil
	}
	out := &drivers.QueryResponse{}
	for _, c := range constraints {
		resp, err := g.query(ctx, target, []*unstructured.Unstructured{c}, review, opts)
		if err != nil {
			p.fail(c, err)
			continue
		}
		resp = g.sift(ctx, p, resp)
		out.Results = append(out.Results, resp.Results...)
		out.StatsEntries = append(out.StatsEntries, resp.StatsEntries...)
	}
	return out, nil
}

// query runs the driver, a panic becoming an error.
func (g *guard) query(ctx context.Context, target string, constraints []*unstructured.Unstructured, review any, opts []reviews.ReviewOpt) (resp *drivers.QueryResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	resp, err = g.Driver.Query(ctx, target, constraints, review, opts...)
	if err == nil && resp == nil {
		resp = &drivers.QueryResponse{}
	}
	return resp, err
}

var errPanic = errors.New("panic in policy evaluation")

// sift takes evaluation errors out of the results into the probe.
func (g *guard) sift(ctx context.Context, p *probe, resp *drivers.QueryResponse) *drivers.QueryResponse {
	kept := resp.Results[:0:0]
	for _, r := range resp.Results {
		msg, failed := g.failure(r)
		if r.Constraint == nil || !failed {
			kept = append(kept, r)
			continue
		}
		err := errors.New(msg)
		if ctx.Err() != nil {
			err = fmt.Errorf("%s: %w", msg, context.Cause(ctx))
		}
		p.fail(r.Constraint, err)
	}
	resp.Results = kept
	return resp
}

// regoError matches the errors OPA raises while evaluating (topdown's
// "eval_conflict_error: ...", "eval_cancel_error: ..."), optionally after
// a location, which the Rego driver turns into one result per constraint
// of the template with the error as message and no details.
var regoError = regexp.MustCompile(`^(\S+:\d+(:\d+)?: )?eval_[a-z_]+_error: `)

func regoFailure(r *types.Result) (string, bool) {
	if d, ok := r.Metadata["details"]; ok && d != nil {
		return "", false
	}
	if !regoError.MatchString(r.Msg) {
		return "", false
	}
	return regoLines(r.Msg), true
}

// celFailure recognises the messages Kubernetes' CEL admission code gives
// an expression that could not be evaluated, which the K8sNativeValidation
// driver reports as a denial when the template's failurePolicy is Fail.
// The prefixes are the ones k8s.io/apiserver itself classifies errors by
// (policy/validating.ErrorType) and the ones its evaluator writes.
func celFailure(r *types.Result) (string, bool) {
	msg := strings.TrimPrefix(r.Msg, "[") // several match condition errors
	for _, prefix := range []string{
		"compilation",
		"validation failed due to running out of cost budget",
		"runtime cost could not be calculated",
		"unexpected internal error",
		"failed messageExpression: ",
		"Invalid type sent to validator",
		"internal error converting ExpressionAccessor",
	} {
		if strings.HasPrefix(msg, prefix) {
			return r.Msg, true
		}
	}
	return r.Msg, strings.HasPrefix(msg, "expression '") && strings.Contains(msg, "' resulted in error: ")
}

package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tollgate-dev/tollgate/policies"
	core "github.com/tollgate-dev/tollgate/policies/review"
)

// MaxBodyBytes is the largest AdmissionReview accepted: the API server's
// own request limit is 3 MiB of object, which JSON-in-JSON (object and
// oldObject) can roughly double.
const MaxBodyBytes = 7 << 20

// Limits on what a response carries, so a pathological object cannot make
// the API server relay megabytes to kubectl.
const (
	maxListedViolations = 50
	maxWarnings         = 20
	maxWarningLen       = 240
)

// Reviewer answers admission requests: it is the HTTP adapter of the
// review core for the mutating and validating endpoints. It reads the
// AdmissionReview, decides what needs no judgement, reads the namespace,
// asks the core, and answers in the API server's terms with the decision
// log and metrics written.
type Reviewer struct {
	opts      ReviewerOptions
	sample    atomic.Uint64
	profiling atomic.Bool
}

// ReviewerOptions are the Reviewer's dependencies.
type ReviewerOptions struct {
	// State holds the policy set in force.
	State *core.Holder
	// Core is the review core admission judges through (with the image
	// gate and the budget gate); nil gives one with neither.
	Core *core.Reviewer
	// Namespaces reads the namespace of each namespaced object.
	Namespaces NamespaceGetter
	// Owners finds the controller a Pod, ReplicaSet or Job claims; nil
	// takes Namespaces when it is also an OwnerGetter (CachedNamespaces
	// is), else every object is judged as itself.
	Owners OwnerGetter
	// OwnNamespace is Tollgate's namespace: never judged.
	OwnNamespace string
	// Timeout bounds a request; it should sit inside the webhook
	// configuration's timeoutSeconds. Default 4s.
	Timeout time.Duration
	// Metrics, DecisionLog and Logger may be nil.
	Metrics     *Metrics
	DecisionLog *DecisionLog
	Logger      *slog.Logger
	// ProfileEvery times each policy on its own for one real validating
	// request in this many (0: 64; negative: never).
	ProfileEvery int
	// Now is the clock exceptions expire by.
	Now func() time.Time
	// MaxInFlight bounds the requests each endpoint answers at once
	// (default 100); MaxInFlightBytes the request bytes they may hold
	// (default 32 MiB, by Content-Length, a body without one counting as
	// MaxBodyBytes). A request beyond either gets a fast 429 with
	// Retry-After rather than a place in an unbounded queue. Negative
	// turns a bound off.
	MaxInFlight      int
	MaxInFlightBytes int64
	// RateLimit, when above 0, is a token bucket per endpoint: this many
	// requests a second on average, Burst (default twice RateLimit, at
	// least 1) at once; beyond it a fast 429. Off by default: a cluster's
	// admission rate varies with its deployments, and the in-flight bounds
	// already cap what a flood costs.
	RateLimit float64
	Burst     int
}

// Default bounds per endpoint: far above what a cluster sends in normal
// load (objects are mostly a few KiB, answered in a few ms), low enough
// that a flood of large bodies stays within the chart's memory limit.
const (
	DefaultMaxInFlight      = 100
	DefaultMaxInFlightBytes = 32 << 20
)

// Validate checks the options.
func (o *ReviewerOptions) Validate() error {
	if o.State == nil {
		return errors.New("reviewer: State is required")
	}
	if o.Namespaces == nil {
		return errors.New("reviewer: Namespaces is required")
	}
	if o.Timeout < 0 {
		return errors.New("reviewer: Timeout must not be negative")
	}
	if o.RateLimit < 0 || o.Burst < 0 {
		return errors.New("reviewer: RateLimit and Burst must not be negative")
	}
	if o.MaxInFlightBytes > 0 && o.MaxInFlightBytes < MaxBodyBytes {
		return fmt.Errorf("reviewer: MaxInFlightBytes %d is below the largest request (%d bytes): such a request could never be answered", o.MaxInFlightBytes, MaxBodyBytes)
	}
	return nil
}

// NewReviewer builds a Reviewer.
func NewReviewer(opts ReviewerOptions) (*Reviewer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = 4 * time.Second
	}
	if opts.Owners == nil {
		opts.Owners, _ = opts.Namespaces.(OwnerGetter)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ProfileEvery == 0 {
		opts.ProfileEvery = 64
	}
	if opts.Core == nil {
		opts.Core = core.New(core.Options{Now: opts.Now})
	}
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.MaxInFlightBytes == 0 {
		opts.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	return &Reviewer{opts: opts}, nil
}

// Names of the two endpoints, as metrics and the decision log label them.
const (
	WebhookMutate   = "mutate"
	WebhookValidate = "validate"
)

// neverJudged are kinds Tollgate never judges even if a configuration sends
// them: judging them could lock the cluster (or Tollgate) out.
var neverJudged = map[string]bool{
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":   true,
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration": true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy":      true,
	"coordination.k8s.io/Lease":                                   true,
	"authentication.k8s.io/TokenReview":                           true,
	"authorization.k8s.io/SubjectAccessReview":                    true,
	"authorization.k8s.io/SelfSubjectAccessReview":                true,
	"authorization.k8s.io/LocalSubjectAccessReview":               true,
	"authorization.k8s.io/SelfSubjectRulesReview":                 true,
	"apiextensions.k8s.io/CustomResourceDefinition":               true,
}

// skip says why a request is allowed without judging it, or "".
func (r *Reviewer) skip(st *core.Set, req *admissionv1.AdmissionRequest) string {
	switch req.Operation {
	case admissionv1.Delete, admissionv1.Connect:
		return "operation " + string(req.Operation) + " is not judged"
	}
	if req.SubResource != "" && !core.JudgedSubresource(req.Resource.Group, req.Resource.Resource, req.SubResource) {
		return "subresource " + req.SubResource + " is not judged"
	}
	if neverJudged[req.Kind.Group+"/"+req.Kind.Kind] {
		return "kind " + req.Kind.Kind + " is never judged"
	}
	ns := req.Namespace
	if req.Kind.Group == "" && req.Kind.Kind == "Namespace" {
		ns = req.Name
	}
	if ns != "" && (ns == r.opts.OwnNamespace || slices.Contains(st.Engine.Config().ExemptNamespaces, ns)) {
		return "namespace " + ns + " is exempt"
	}
	return ""
}

// prepare builds the engine input, reading the namespace. A request that
// needs no judgement returns a nil input and the reason.
func (r *Reviewer) prepare(ctx context.Context, st *core.Set, req *Request) (*policies.Input, string, error) {
	if why := r.skip(st, req.AdmissionRequest); why != "" {
		return nil, why, nil
	}
	var ns map[string]any
	isNamespace := req.Kind.Group == "" && req.Kind.Kind == "Namespace" // its request names itself as its namespace
	if req.Namespace != "" && !isNamespace {
		var err error
		if ns, err = r.opts.Namespaces.Namespace(ctx, req.Namespace); err != nil {
			return nil, "", err
		}
	}
	in := admissionInput(req, ns)
	if in.Object == nil {
		return nil, "no object to judge", nil
	}
	if req.Operation == admissionv1.Update && req.SubResource == "" && trivialUpdate(in.OldObject, in.Object) {
		return nil, "only status, bookkeeping or finalizer removal changed", nil
	}
	if err := r.resolveController(ctx, in); err != nil {
		return nil, "", err
	}
	return in, "", nil
}

// admissionInput is the engine's input for a decoded request, as
// policies.AdmissionInput makes it from raw bytes, without decoding again.
func admissionInput(req *Request, namespace map[string]any) *policies.Input {
	in := &policies.Input{
		Kind:        policies.GroupVersionKind{Group: req.Kind.Group, Version: req.Kind.Version, Kind: req.Kind.Kind},
		Operation:   string(req.Operation),
		Namespace:   namespace,
		SubResource: req.SubResource,
		Resource:    policies.GroupVersionResource{Group: req.Resource.Group, Version: req.Resource.Version, Resource: req.Resource.Resource},
		Source:      policies.SourceAdmission,
		DryRun:      req.DryRun != nil && *req.DryRun,
		UserInfo: &policies.UserInfo{
			Username: req.UserInfo.Username,
			UID:      req.UserInfo.UID,
			Groups:   req.UserInfo.Groups,
		},
		Object:    req.Object,
		OldObject: req.OldObject,
	}
	if len(req.UserInfo.Extra) > 0 {
		in.UserInfo.Extra = make(map[string][]string, len(req.UserInfo.Extra))
		for k, v := range req.UserInfo.Extra {
			in.UserInfo.Extra[k] = v
		}
	}
	return in
}

// begin loads the state and prepares the input of a request, with the
// allowing response it starts from. A nil input (and nil error) means the
// request needs no judgement: the response is the answer.
func (r *Reviewer) begin(ctx context.Context, req *Request) (*core.Set, *admissionv1.AdmissionResponse, *policies.Input, error) {
	st := req.set
	if st == nil {
		st = r.opts.State.Load()
	}
	if st == nil {
		return nil, nil, nil, errors.New("policies are not loaded yet")
	}
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	in, why, err := r.prepare(ctx, st, req)
	if err != nil {
		return st, nil, nil, err
	}
	if in == nil {
		r.opts.Logger.DebugContext(ctx, "not judged", "uid", req.UID, "reason", why)
	}
	return st, resp, in, nil
}

// Mutate answers the mutating webhook: the engine's defaults as a JSON patch.
func (r *Reviewer) Mutate(ctx context.Context, req *Request) (*admissionv1.AdmissionResponse, error) {
	st, resp, in, err := r.begin(ctx, req)
	if err != nil || in == nil {
		return resp, err
	}
	m, notes, merr := r.opts.Core.Mutate(ctx, st, in)
	for _, n := range notes {
		r.opts.Logger.DebugContext(ctx, "image not pinned", "uid", req.UID, "reason", n)
	}
	if merr != nil {
		// The object is malformed in a way defaulting cannot handle; the
		// validator and the API server's own validation judge it.
		resp.Warnings = []string{truncate("tollgate could not default this object: " + merr.Error())}
		return resp, nil //nolint:nilerr // the failure is reported to the user as a warning
	}
	if !m.Empty() {
		ops := make([]jsonpatch.Operation, len(m.Patch))
		for i, p := range m.Patch {
			ops[i] = jsonpatch.Operation{Operation: p.Op, Path: p.Path, Value: p.Value}
		}
		patch, err := json.Marshal(ops)
		if err != nil {
			return nil, fmt.Errorf("encoding patch: %w", err)
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	r.record(ctx, st, WebhookMutate, req, in, resp, nil, m, nil)
	return resp, nil
}

// Validate answers the validating webhook: Enforce findings deny with every
// violation listed, Warn findings become admission warnings, Audit findings
// are recorded.
func (r *Reviewer) Validate(ctx context.Context, req *Request) (*admissionv1.AdmissionResponse, error) {
	st, resp, in, err := r.begin(ctx, req)
	if err != nil || in == nil {
		return resp, err
	}
	v := r.opts.Core.Review(ctx, st, in)
	denials, warnings := v.Denials, v.Warnings
	if len(denials) > 0 {
		resp.Allowed = false
		resp.Result = &metav1.Status{
			Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: denialMessage(req.AdmissionRequest, denials),
		}
	}
	for i, w := range warnings {
		if i == maxWarnings {
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("tollgate: %d more warnings", len(warnings)-i))
			break
		}
		resp.Warnings = append(resp.Warnings, truncate("tollgate: "+w))
	}
	dep := r.deploymentOf(ctx, st, req, in, resp.Allowed)
	r.record(ctx, st, WebhookValidate, req, in, resp, &v.Decision, nil, dep)
	r.maybeProfile(st, in)
	return resp, nil
}

// denialMessage lists every violation in one message kubectl prints whole.
func denialMessage(req *admissionv1.AdmissionRequest, denials []string) string {
	var b strings.Builder
	name := req.Name
	if req.Namespace != "" && !(req.Kind.Group == "" && req.Kind.Kind == "Namespace") {
		name = req.Namespace + "/" + name // a Namespace's request names itself as its namespace
	}
	noun := "violations"
	if len(denials) == 1 {
		noun = "violation"
	}
	fmt.Fprintf(&b, "tollgate denied %s %s: %d policy %s", req.Kind.Kind, strings.TrimSuffix(name, "/"), len(denials), noun)
	for i, d := range denials {
		if i == maxListedViolations {
			fmt.Fprintf(&b, "\n  ... and %d more", len(denials)-i)
			break
		}
		b.WriteString("\n  - ")
		b.WriteString(d)
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) <= maxWarningLen {
		return s
	}
	return s[:maxWarningLen-3] + "..."
}

// record writes the decision log entry and the metrics of one request. A
// deployment (dep) is always logged: it is evidence of a release even
// when no policy found anything.
func (r *Reviewer) record(ctx context.Context, st *core.Set, webhook string, req *Request, in *policies.Input, resp *admissionv1.AdmissionResponse, d *policies.Decision, m *policies.Mutation, dep *Deployment) {
	dry := in.DryRun
	if r.opts.Metrics != nil && !dry && d != nil {
		for _, f := range d.Findings {
			action := string(f.Action)
			if f.Waived() {
				action = "waived"
			}
			r.opts.Metrics.violations.WithLabelValues(f.Policy, action).Inc()
		}
		for _, e := range d.Errors {
			r.opts.Metrics.errors.WithLabelValues(e.Policy).Inc()
		}
	}
	if dep != nil {
		r.opts.Metrics.deployment(req.Namespace, dep)
	}
	if d != nil && len(d.Findings) == 0 && len(d.Errors) == 0 && dep == nil {
		return // a clean validation: the metrics count it, the log stays readable
	}
	if m != nil && m.Empty() {
		return
	}
	entry := &DecisionEntry{
		Time: r.opts.Now().UTC(), UID: string(req.UID), Webhook: webhook,
		User: req.UserInfo.Username, Groups: req.UserInfo.Groups,
		Operation: string(req.Operation), Kind: gvkString(req.AdmissionRequest), Resource: req.Resource.Resource,
		SubResource: req.SubResource, Namespace: req.Namespace, Name: objectName(req.AdmissionRequest, in),
		DryRun: dry, Allowed: resp.Allowed, Generation: st.Generation, Deployment: dep,
		PolicySet: st.PolicySet,
	}
	caller := CallerFrom(ctx)
	entry.Authenticated, entry.Client = caller.Authenticated, caller.Name
	if d != nil {
		entry.Findings = d.Findings
		for _, e := range d.Errors {
			entry.Errors = append(entry.Errors, e.Error())
		}
	}
	if m != nil {
		entry.Injected, entry.PatchOps = m.Injected, len(m.Patch)
	}
	if err := r.opts.DecisionLog.Write(entry); err != nil {
		// Admission goes on: the entry is counted and the log records
		// the gap when it can write again.
		r.opts.Metrics.decisionLogError()
		r.opts.Logger.ErrorContext(ctx, "decision log write failed", "uid", req.UID, "error", err)
	}
}

// maybeProfile times each policy on its own for a sample of real
// requests. It runs after the response, off the request path, one at a
// time: a sample that finds the previous one still running is skipped.
func (r *Reviewer) maybeProfile(st *core.Set, in *policies.Input) {
	if r.opts.Metrics == nil || r.opts.ProfileEvery < 0 || in.DryRun {
		return
	}
	if r.sample.Add(1)%uint64(r.opts.ProfileEvery) != 1 || !r.profiling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.profiling.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
		defer cancel()
		st.Engine.Profile(ctx, in, func(policy string, took time.Duration) {
			r.opts.Metrics.policyTime.WithLabelValues(policy).Observe(took.Seconds())
		})
	}()
}

func gvkString(req *admissionv1.AdmissionRequest) string {
	if req.Kind.Group == "" {
		return req.Kind.Version + "/" + req.Kind.Kind
	}
	return req.Kind.Group + "/" + req.Kind.Version + "/" + req.Kind.Kind
}

func objectName(req *admissionv1.AdmissionRequest, in *policies.Input) string {
	if req.Name != "" {
		return req.Name
	}
	if meta, ok := in.Object["metadata"].(map[string]any); ok {
		if g, _ := meta["generateName"].(string); g != "" {
			return g + "*"
		}
	}
	return ""
}

// trivialUpdate reports whether an update changes nothing a policy judges:
// only status, bookkeeping metadata, or the removal of finalizers (which is
// how a deleting object finishes, and must never be blocked).
func trivialUpdate(oldObj, newObj map[string]any) bool {
	if oldObj == nil || newObj == nil {
		return false
	}
	of, nf := finalizers(oldObj), finalizers(newObj)
	for _, f := range nf {
		if !slices.Contains(of, f) {
			return false // a finalizer was added
		}
	}
	if !equalExcept(oldObj, newObj, topLevelUnjudged) {
		return false
	}
	om, oldHas := oldObj["metadata"]
	nm, newHas := newObj["metadata"]
	oldMeta, oldIsMap := om.(map[string]any)
	newMeta, newIsMap := nm.(map[string]any)
	if oldHas != newHas || !oldIsMap || !newIsMap {
		return oldHas == newHas && reflect.DeepEqual(om, nm)
	}
	return equalExcept(oldMeta, newMeta, metadataUnjudged)
}

func finalizers(obj map[string]any) []any {
	meta, _ := obj["metadata"].(map[string]any)
	f, _ := meta["finalizers"].([]any)
	return f
}

// The fields an update is not judged on: status at the top level (with
// metadata, compared on its own), bookkeeping in metadata.
var (
	topLevelUnjudged = map[string]bool{"status": true, "metadata": true}
	metadataUnjudged = map[string]bool{"resourceVersion": true, "generation": true, "managedFields": true, "finalizers": true}
)

// equalExcept compares two objects on every key but the skipped ones,
// without copying either.
func equalExcept(a, b map[string]any, skip map[string]bool) bool {
	n := 0
	for k, av := range a {
		if skip[k] {
			continue
		}
		bv, ok := b[k]
		if !ok || !reflect.DeepEqual(av, bv) {
			return false
		}
		n++
	}
	for k := range b {
		if !skip[k] {
			n--
		}
	}
	return n == 0
}

// Request is one admission request as the handler decoded it: the API
// server's fields, with the object and old object decoded once, straight
// into the JSON values the engine judges (numbers as json.Number), rather
// than kept as raw bytes and decoded again. The AdmissionRequest's raw
// fields (Object, OldObject, Options) are left empty.
type Request struct {
	*admissionv1.AdmissionRequest
	// Object and OldObject are nil when the request carries none.
	Object, OldObject map[string]any

	// set is the policy set the body was decoded for (what it leaves out
	// depends on what the set reads); the request is judged by it. Nil
	// judges by the set in force.
	set *core.Set
}

// reviewResponse is the AdmissionReview answered.
type reviewResponse struct {
	APIVersion string                         `json:"apiVersion"`
	Kind       string                         `json:"kind"`
	Response   *admissionv1.AdmissionResponse `json:"response"`
}

// bodyPool holds request and response buffers of the usual size; a larger
// one is left to the collector so the pool never pins megabytes.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const pooledBufferMax = 256 << 10

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= pooledBufferMax {
		b.Reset()
		bodyPool.Put(b)
	}
}

// ReviewFunc answers one admission request. An error means Tollgate could
// not decide (a namespace could not be read, policies are not loaded); it
// becomes an HTTP 500 so the webhook's failurePolicy applies.
type ReviewFunc func(ctx context.Context, req *Request) (*admissionv1.AdmissionResponse, error)

// Handler serves one admission endpoint: it reads and checks the
// AdmissionReview (size, content type, version, uid), bounds the time
// spent, contains panics in a response that keeps the request UID, and
// writes the response in the version the request came in.
func (r *Reviewer) Handler(webhook string, review ReviewFunc) http.Handler {
	limit := newInFlight(r.opts.MaxInFlight, r.opts.MaxInFlightBytes)
	var bucket *rate.Limiter
	if r.opts.RateLimit > 0 {
		burst := r.opts.Burst
		if burst == 0 {
			burst = max(int(2*r.opts.RateLimit), 1)
		}
		bucket = rate.NewLimiter(rate.Limit(r.opts.RateLimit), burst)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		if bucket != nil && !bucket.Allow() {
			r.opts.Metrics.rejectedRequest(webhook, "rate")
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close") // the body is not read
			httpError(w, http.StatusTooManyRequests, "tollgate: admission request rate over the limit; retry")
			return
		}
		if hr.ContentLength > MaxBodyBytes {
			r.opts.Metrics.rejectedRequest(webhook, "too_large")
			w.Header().Set("Connection", "close")
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body of %d bytes: body is over the %d byte limit", hr.ContentLength, MaxBodyBytes))
			return
		}
		weight := hr.ContentLength
		if weight < 0 {
			weight = MaxBodyBytes // unknown until read: the most it may be
		}
		release, reason := limit.acquire(weight)
		if reason != "" {
			r.opts.Metrics.rejectedRequest(webhook, reason)
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Connection", "close") // the body is not read
			httpError(w, http.StatusTooManyRequests, "tollgate: too many admission requests in flight ("+strings.ReplaceAll(reason, "_", " ")+"); retry")
			return
		}
		defer release()
		defer r.opts.Metrics.track(webhook)()
		if hr.Method != http.MethodPost {
			httpError(w, http.StatusMethodNotAllowed, "admission reviews are POSTed")
			return
		}
		if mt, _, err := mime.ParseMediaType(hr.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q: want application/json", hr.Header.Get("Content-Type")))
			return
		}
		// Sized by Content-Length: reading does not double the buffer.
		buf := bodyPool.Get().(*bytes.Buffer)
		defer putBuffer(buf)
		buf.Grow(int(min(weight, MaxBodyBytes)) + bytes.MinRead)
		_, err := buf.ReadFrom(io.LimitReader(hr.Body, MaxBodyBytes+1))
		body := buf.Bytes()
		if err != nil {
			httpError(w, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}
		if len(body) > MaxBodyBytes {
			r.opts.Metrics.rejectedRequest(webhook, "too_large")
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over the %d byte limit", MaxBodyBytes))
			return
		}
		// The set is taken before decoding: it says whether managedFields
		// are read, and the same set judges the request.
		st := r.opts.State.Load()
		ar, req, err := decodeReview(body, st != nil && !st.ReadsManagedFields(policies.SourceAdmission))
		if req != nil {
			req.set = st
		}
		if err != nil {
			malformed(w, body, "malformed AdmissionReview: "+err.Error())
			return
		}
		switch {
		case ar.Kind != "AdmissionReview":
			httpError(w, http.StatusBadRequest, fmt.Sprintf("kind %q: want AdmissionReview", ar.Kind))
			return
		case ar.APIVersion != "admission.k8s.io/v1" && ar.APIVersion != "admission.k8s.io/v1beta1":
			httpError(w, http.StatusBadRequest, fmt.Sprintf("apiVersion %q: want admission.k8s.io/v1", ar.APIVersion))
			return
		case req == nil:
			httpError(w, http.StatusBadRequest, "request: missing")
			return
		case req.UID == "":
			httpError(w, http.StatusBadRequest, "request.uid: missing")
			return
		}
		ctx, cancel := context.WithTimeout(hr.Context(), r.opts.Timeout)
		defer cancel()
		logger := func() *slog.Logger { // built only when something is logged
			return r.opts.Logger.With("uid", req.UID, "webhook", webhook, "kind", req.Kind.Kind,
				"namespace", req.Namespace, "name", req.Name, "operation", req.Operation, "user", req.UserInfo.Username)
		}
		dry := req.DryRun != nil && *req.DryRun

		resp, err := r.contain(ctx, logger, webhook, req, review)
		decision := "error"
		if err != nil {
			logger().ErrorContext(ctx, "admission request failed", "error", err)
			r.opts.Metrics.observeRequest(webhook, string(req.Operation), req.Kind.Kind, decision, dry, time.Since(start))
			httpError(w, http.StatusInternalServerError, fmt.Sprintf("tollgate could not decide on %s %s: %v", req.Kind.Kind, req.Name, err))
			return
		}
		switch {
		case !resp.Allowed:
			decision = "denied"
		case len(resp.Patch) > 0:
			decision = "patched"
		case len(resp.Warnings) > 0:
			decision = "warned"
		default:
			decision = "allowed"
		}
		out := bodyPool.Get().(*bytes.Buffer)
		defer putBuffer(out)
		if err := json.NewEncoder(out).Encode(reviewResponse{APIVersion: ar.APIVersion, Kind: "AdmissionReview", Response: resp}); err != nil {
			httpError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out.Bytes())
		r.opts.Metrics.observeRequest(webhook, string(req.Operation), req.Kind.Kind, decision, dry, time.Since(start))
	})
}

// contain runs a review, turning a panic into an error response that keeps
// the request's UID (the engine already contains panics per policy; this
// catches everything around it).
func (r *Reviewer) contain(ctx context.Context, logger func() *slog.Logger, webhook string, req *Request, review ReviewFunc) (resp *admissionv1.AdmissionResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			logger().ErrorContext(ctx, "panic answering admission request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			msg := fmt.Sprintf("tollgate internal error on request %s: %v", req.UID, p)
			resp, err = &admissionv1.AdmissionResponse{UID: req.UID}, nil
			if webhook == WebhookMutate {
				// Mutation fails open, as its failurePolicy does; the
				// validator still judges the object.
				resp.Allowed, resp.Warnings = true, []string{truncate(msg)}
			} else {
				resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError, Message: msg}
			}
		}
	}()
	resp, err = review(ctx, req)
	if err == nil && resp != nil {
		resp.UID = req.UID
	}
	return resp, err
}

// malformed answers a body that does not decode as an AdmissionReview. When
// its envelope and request.uid still read (a field of the request has the
// wrong type), the answer is an AdmissionReview that denies with the UID,
// as every review the API server sends is answered; otherwise HTTP 400.
func malformed(w http.ResponseWriter, body []byte, msg string) {
	// Read leniently: a field of the wrong type is left empty and the rest
	// read, with field names matched exactly, as decodeReview reads them.
	doc, _ := decodeJSONObject(body)
	apiVersion, _ := doc["apiVersion"].(string)
	kind, _ := doc["kind"].(string)
	request, _ := doc["request"].(map[string]any)
	uid, _ := request["uid"].(string)
	if kind != "AdmissionReview" || (apiVersion != "admission.k8s.io/v1" && apiVersion != "admission.k8s.io/v1beta1") || uid == "" {
		httpError(w, http.StatusBadRequest, msg)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: types.UID(uid), Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadRequest, Reason: metav1.StatusReasonBadRequest, Message: msg,
	}}
	out, err := json.Marshal(reviewResponse{APIVersion: apiVersion, Kind: "AdmissionReview", Response: resp})
	if err != nil {
		httpError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// inFlight bounds the requests an endpoint answers at once, by count and
// by body bytes, without queueing: a request that does not fit is turned
// away at once.
type inFlight struct {
	mu                 sync.Mutex
	maxCount, count    int
	maxBytes, bytesNow int64
}

func newInFlight(maxCount int, maxBytes int64) *inFlight {
	return &inFlight{maxCount: maxCount, maxBytes: maxBytes}
}

// acquire takes a place for a request of weight bytes: the release func,
// or the reason it does not fit.
func (l *inFlight) acquire(weight int64) (func(), string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.maxCount > 0 && l.count >= l.maxCount:
		return nil, "in_flight"
	case l.maxBytes > 0 && l.bytesNow+weight > l.maxBytes:
		return nil, "in_flight_bytes"
	}
	l.count++
	l.bytesNow += weight
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.count--
			l.bytesNow -= weight
			l.mu.Unlock()
		})
	}, ""
}

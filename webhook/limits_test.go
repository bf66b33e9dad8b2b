package webhook

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
)

// TestInFlightBounds: beyond the bound on requests or bytes in flight a
// request gets a fast 429 with Retry-After, without being read or
// reviewed; a body announced over the limit gets 413; a place is given
// back when a request ends.
func TestInFlightBounds(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.reviewer.opts.MaxInFlight = 2
	f.reviewer.opts.MaxInFlightBytes = MaxBodyBytes + 1<<20
	release := make(chan struct{})
	var entered sync.WaitGroup
	blocking := func(ctx context.Context, req *Request) (*admissionv1.AdmissionResponse, error) {
		entered.Done()
		<-release
		return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}, nil
	}
	h := f.reviewer.Handler(WebhookValidate, blocking)
	small := review(t, "CREATE", "Pod", "shop", "p", privilegedPod, "")
	big := padded(t, small, 6<<20)

	var done sync.WaitGroup
	start := func(body []byte) {
		entered.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			if rec := post(h, body, "application/json"); rec.Code != http.StatusOK {
				t.Errorf("a request within the bounds: HTTP %d %s", rec.Code, rec.Body)
			}
		}()
		entered.Wait()
	}
	start(big) // 6 MiB of the 8 in flight
	if rec := post(h, big, "application/json"); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" ||
		!strings.Contains(rec.Body.String(), "in flight bytes") {
		t.Errorf("over the byte bound: HTTP %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	start(small) // two in flight
	if rec := post(h, small, "application/json"); rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "in flight") {
		t.Errorf("over the count bound: HTTP %d %s", rec.Code, rec.Body)
	}
	close(release)
	done.Wait()
	if rec := post(h, small, "application/json"); rec.Code != http.StatusOK {
		t.Errorf("after the others ended: HTTP %d %s", rec.Code, rec.Body)
	}
	for reason, want := range map[string]float64{"in_flight": 1, "in_flight_bytes": 1} {
		if n := testutil.ToFloat64(f.metrics.rejected.WithLabelValues(WebhookValidate, reason)); n != want {
			t.Errorf("rejected{%s} = %v, want %v", reason, n, want)
		}
	}

	// Announced too large: refused before reading.
	req := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = MaxBodyBytes + 1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "over the 7340032 byte limit") {
		t.Errorf("too large: HTTP %d %s", rec.Code, rec.Body)
	}
	// Without a Content-Length the body counts as the largest there may be.
	req = httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(small))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("chunked body: HTTP %d %s", rec.Code, rec.Body)
	}
}

// padded returns an AdmissionReview of about size bytes.
func padded(t *testing.T, body []byte, size int) []byte {
	t.Helper()
	pad := strings.Repeat("x", size-len(body))
	return bytes.Replace(body, []byte(`"uid":"uid-p"`), []byte(`"uid":"uid-p","padding":"`+pad+`"`), 1)
}

// TestReviewerOptionsBounds: a byte bound below the largest request is
// refused.
func TestReviewerOptionsBounds(t *testing.T) {
	o := ReviewerOptions{State: newFixture(t, nil, nil).reviewer.opts.State, Namespaces: fakeNamespaces{}, MaxInFlightBytes: 1 << 20}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "below the largest request") {
		t.Errorf("error %v", err)
	}
}

type fullDisk struct{ fail bool }

func (d *fullDisk) Write(p []byte) (int, error) {
	if d.fail {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

// TestDecisionLogFailureKeepsAdmitting: a decision log that cannot be
// written does not change the answer; the failure is counted.
func TestDecisionLogFailureKeepsAdmitting(t *testing.T) {
	f := newFixture(t, nil, nil)
	disk := &fullDisk{fail: true}
	f.reviewer.opts.DecisionLog = NewDecisionLog(disk)
	_, resp := decodeResponse(t, post(f.validate, review(t, "CREATE", "Pod", "shop", "p", privilegedPod, ""), "application/json"))
	if resp.Allowed {
		t.Error("a privileged pod was allowed when the log failed")
	}
	if n := testutil.ToFloat64(f.metrics.logErrors); n != 1 {
		t.Errorf("decision log errors %v, want 1", n)
	}
	if n := f.reviewer.opts.DecisionLog.Lost(); n != 1 {
		t.Errorf("lost %d, want 1", n)
	}
}

// TestRateLimit: beyond the burst a request gets a fast 429, counted.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.reviewer.opts.RateLimit, f.reviewer.opts.Burst = 0.001, 2 // no refill during the test
	h := f.reviewer.Handler(WebhookValidate, f.reviewer.Validate)
	body := review(t, "CREATE", "Pod", "shop", "p", privilegedPod, "")
	var codes []int
	for range 4 {
		codes = append(codes, post(h, body, "application/json").Code)
	}
	if want := []int{200, 200, 429, 429}; !slices.Equal(codes, want) {
		t.Errorf("codes %v, want %v", codes, want)
	}
	if n := testutil.ToFloat64(f.metrics.rejected.WithLabelValues(WebhookValidate, "rate")); n != 2 {
		t.Errorf("rejected{rate} = %v", n)
	}
	if err := (&ReviewerOptions{State: f.reviewer.opts.State, Namespaces: fakeNamespaces{}, RateLimit: -1}).Validate(); err == nil {
		t.Error("a negative rate was accepted")
	}
}

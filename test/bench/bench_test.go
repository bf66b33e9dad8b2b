package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	cases := []struct {
		name      string
		latencies []time.Duration
		p         float64
		want      time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p95 of 1..100", ms(hundred...), 0.95, 95 * time.Millisecond},
		{"max", ms(1, 2, 3), 1, 3 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := outcome{Latencies: tc.latencies}
			if got := o.Percentile(tc.p); got != tc.want {
				t.Fatalf("Percentile(%g) = %s, want %s", tc.p, got, tc.want)
			}
		})
	}
}

func TestReviewTemplatesRenderUniqueValidReviews(t *testing.T) {
	kube := fake.NewClientset()
	templates, err := reviewTemplates(context.Background(), kube, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(templates) != 2 {
		t.Fatalf("%d templates, want a Pod and a Deployment", len(templates))
	}
	for i, want := range []struct{ kind, name string }{{"Pod", "bench-pods-000000000042"}, {"Deployment", "bench-deployments-000000000042"}} {
		body := templates[i].render(42)
		if len(body) != templates[i].size {
			t.Errorf("%s: rendered %d bytes, template says %d", want.kind, len(body), templates[i].size)
		}
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil {
			t.Fatalf("%s: %v", want.kind, err)
		}
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name, Namespace, UID string
				Labels               map[string]string
			} `json:"metadata"`
		}
		if err := json.Unmarshal(review.Request.Object.Raw, &obj); err != nil {
			t.Fatalf("%s object: %v", want.kind, err)
		}
		got := []string{string(review.Request.UID), review.Request.Kind.Kind, review.Request.Name, string(review.Request.Operation),
			obj.Kind, obj.Metadata.Name, obj.Metadata.Namespace, obj.Metadata.UID, obj.Metadata.Labels["team"]}
		wantFields := []string{requestUID(42), want.kind, want.name, "CREATE",
			want.kind, want.name, "shop", objectUIDPrefix + "000000000042", "payments"}
		if diff := cmp.Diff(wantFields, got); diff != "" {
			t.Errorf("%s review (-want +got):\n%s", want.kind, diff)
		}
		if other := templates[i].render(43); strings.Contains(string(other), want.name) {
			t.Errorf("%s: request 43 still names %s", want.kind, want.name)
		}
	}
}

func TestCompliantObjectsAreHardened(t *testing.T) {
	pod := compliantPod("shop", "p")
	all := append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...)
	if len(pod.Spec.Containers) < 3 {
		t.Errorf("%d containers, want several", len(pod.Spec.Containers))
	}
	for _, c := range all {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
			len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.Privileged != nil {
			t.Errorf("container %s is not hardened: %+v", c.Name, sc)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("container %s lacks requests or a memory limit", c.Name)
		}
		if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
			t.Errorf("container %s image %s is not pinned", c.Name, c.Image)
		}
	}
	if p := privilegedPod("shop", "p"); p.Spec.Containers[0].SecurityContext.Privileged == nil ||
		pod.Spec.Containers[0].SecurityContext.Privileged != nil {
		t.Error("privilegedPod must set privileged on a copy only")
	}
}

func TestCheckAllowed(t *testing.T) {
	cases := []struct {
		name, body, wantErr string
	}{
		{"allowed", `{"response":{"uid":"u1","allowed":true}}`, ""},
		{"allowed with a patch", `{"response":{"uid":"u1","allowed":true,"patchType":"JSONPatch","patch":"W10="}}`, ""},
		{"denied", `{"response":{"uid":"u1","allowed":false,"status":{"message":"[pss] no"}}}`, "compliant object denied: [pss] no"},
		{"other UID", `{"response":{"uid":"u2","allowed":true}}`, `answer for UID "u2", want "u1"`},
		{"no response", `{}`, "without response"},
		{"not JSON", `<html>`, "decoding the AdmissionReview answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAllowed([]byte(tc.body), "u1")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestClosedLoopNumbersEveryRequestOnce(t *testing.T) {
	var seq atomic.Uint64
	var mu sync.Mutex
	seen := map[uint64]bool{}
	fail := errors.New("boom")
	o := generate(context.Background(), load{Concurrency: 4, Duration: 100 * time.Millisecond}, &seq, func(_ context.Context, n uint64) error {
		mu.Lock()
		dup := seen[n]
		seen[n] = true
		mu.Unlock()
		if dup {
			t.Errorf("request %d sent twice", n)
		}
		time.Sleep(time.Millisecond)
		if n%10 == 0 {
			return fail
		}
		return nil
	})
	if o.Requests != len(seen) || o.Requests < 8 {
		t.Fatalf("%d requests recorded, %d sent", o.Requests, len(seen))
	}
	if o.Errors != o.Requests/10 && o.Errors != o.Requests/10+1 && o.Errors != o.Requests/10-1 {
		t.Errorf("%d errors in %d requests, want about a tenth", o.Errors, o.Requests)
	}
	if diff := cmp.Diff([]string{"boom"}, o.ErrorSamples); diff != "" {
		t.Errorf("error samples (-want +got):\n%s", diff)
	}
}

// A server that can answer 1 request per 10ms, offered 500 per second for
// 200ms: about 100 arrive and the last waits most of a second. Latencies
// taken from the scheduled arrival show that queue; a closed loop would
// report 10ms.
func TestOpenLoopMeasuresFromScheduledArrival(t *testing.T) {
	var seq atomic.Uint64
	o := generate(context.Background(), load{Rate: 500, Duration: 200 * time.Millisecond, Workers: 1}, &seq, func(context.Context, uint64) error {
		time.Sleep(10 * time.Millisecond)
		return nil
	})
	if o.Requests < 50 || o.Requests > 200 || o.Errors != 0 {
		t.Fatalf("%d requests, %d errors; want about 100 and none", o.Requests, o.Errors)
	}
	if uint64(o.Requests) != seq.Load() {
		t.Errorf("%d requests recorded, %d sent: every arrival must be answered", o.Requests, seq.Load())
	}
	if got := o.Percentile(1); got < 300*time.Millisecond {
		t.Errorf("max latency %s: the queue behind the slow server is hidden", got)
	}
	if got := o.Percentile(0.01); got < 10*time.Millisecond {
		t.Errorf("min latency %s: below the server's own 10ms", got)
	}
}

func TestOpenLoopDrainCancelsWhatIsLeft(t *testing.T) {
	var seq atomic.Uint64
	o := generate(context.Background(), load{Rate: 200, Duration: 100 * time.Millisecond, Workers: 1, Drain: 50 * time.Millisecond}, &seq,
		func(ctx context.Context, _ uint64) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(40 * time.Millisecond):
				return nil
			}
		})
	if o.Errors == 0 || o.Errors == o.Requests {
		t.Fatalf("%d of %d requests failed; want the ones left after the drain only", o.Errors, o.Requests)
	}
	if o.Elapsed > time.Second {
		t.Errorf("took %s despite a 50ms drain", o.Elapsed)
	}
}

func TestSummarisePairsLoads(t *testing.T) {
	r := &results{Phases: []phaseResult{
		{Target: "direct", Load: "c=16 closed", PerSecond: 1000},
		{Target: "apiserver", Load: "200/s open", PerSecond: 200, LatencyMs: latencyMs{P50: 2, P99: 10}},
		{Target: "apiserver", Load: "c=16 closed", PerSecond: 800, LatencyMs: latencyMs{P50: 20, P99: 50}},
		{Target: "apiserver", Webhooks: true, Load: "200/s open", PerSecond: 199, LatencyMs: latencyMs{P50: 5, P99: 30}},
		{Target: "apiserver", Webhooks: true, Load: "c=16 closed", PerSecond: 400, LatencyMs: latencyMs{P50: 40, P99: 90}},
	}}
	r.summarise()
	want := []overhead{
		{Load: "200/s open", P50WithoutMs: 2, P50WithMs: 5, AddedP50Ms: 3, P99WithoutMs: 10, P99WithMs: 30, AddedP99Ms: 20, ThroughputRatio: 0.995},
		{Load: "c=16 closed", P50WithoutMs: 20, P50WithMs: 40, AddedP50Ms: 20, P99WithoutMs: 50, P99WithMs: 90, AddedP99Ms: 40, ThroughputRatio: 0.5},
	}
	if diff := cmp.Diff(want, r.Overhead); diff != "" {
		t.Fatalf("overhead (-want +got):\n%s", diff)
	}
	var out strings.Builder
	r.print(&out)
	for _, s := range []string{"+3.00ms", "+40.0ms", "0.50"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

func TestAppendSeq(t *testing.T) {
	for seq, want := range map[uint64]string{0: "000000000000", 42: "000000000042", 999_999_999_999: "999999999999", 1_000_000_000_001: "000000000001"} {
		if got := string(appendSeq(nil, seq)); got != want {
			t.Errorf("appendSeq(%d) = %s, want %s", seq, got, want)
		}
	}
}

func TestInterruptedPhaseCountsNoErrors(t *testing.T) {
	for _, l := range []load{{Concurrency: 4, Duration: time.Minute}, {Rate: 200, Duration: time.Minute, Workers: 4}} {
		t.Run(l.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			var seq atomic.Uint64
			start := time.Now()
			o := generate(ctx, l, &seq, func(ctx context.Context, _ uint64) error {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
					return nil
				}
			})
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %s after the interrupt", took)
			}
			if o.Errors != 0 || o.Requests == 0 {
				t.Fatalf("%d requests, %d errors; want some and none", o.Requests, o.Errors)
			}
		})
	}
}

func TestRunRejectsBadFlagsBeforeStartingAnything(t *testing.T) {
	cases := []struct {
		args    []string
		code    int
		wantErr string
	}{
		{[]string{"-h"}, 0, "Usage: go run ./test/bench"},
		{[]string{"-duration", "10ms"}, 2, "-duration 10ms: want at least 1s"},
		{[]string{"-rate", "0"}, 2, "-rate 0: want requests per second above 0"},
		{[]string{"-api-rate", "-5"}, 2, "-api-rate -5: want pods per second above 0"},
		{[]string{"-tollgate", ""}, 2, "-tollgate: want the path"},
		{[]string{"extra"}, 2, `unexpected arguments ["extra"]`},
		{[]string{"-nope"}, 2, "flag provided but not defined: -nope"},
		{[]string{"-serve-arg", "gc-percent=200"}, 2, `"gc-percent=200": want a flag of tollgate serve, starting with --`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), append([]string{"bench"}, tc.args...), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.wantErr) || stdout.Len() != 0 {
				t.Fatalf("exit %d, stderr %q, stdout %q; want exit %d and stderr containing %q", code, stderr.String(), stdout.String(), tc.code, tc.wantErr)
			}
		})
	}
}

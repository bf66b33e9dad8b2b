package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/test/proc"
)

// TestCertRotationWhileRequestsFlow runs a second `tollgate serve`, with its
// own webhook configurations, a CA that lives 24 seconds and a serving
// certificate that lives 12, while pods are created without pause. Every
// request must pass through it and succeed across CA and certificate
// rotations.
func TestCertRotationWhileRequestsFlow(t *testing.T) {
	ctx := context.Background()
	teamNamespace(t, "rotation")
	decisions, logs := &proc.Buffer{}, &proc.Buffer{}
	stop, port, err := startServer(ctx, serverOptions{
		name: "tollgate-rotation", log: logs, decisions: decisions,
		caValidity: 24 * time.Second, certValidity: 12 * time.Second,
		publishGrace: 2 * time.Second, certCheck: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	defer func() {
		stop()
		for _, obj := range []client.Object{
			&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tollgate-rotation"}},
			&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "tollgate-rotation"}},
		} {
			_ = env.client.Delete(ctx, obj)
		}
	}()

	// The API server learns of a new webhook configuration through an
	// informer, a moment after it is written: until a probe is answered by
	// this server, a create may pass without asking it. Count from then.
	var before int64
	eventually(t, 30*time.Second, func() error {
		probe := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "rotation"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1.0"}}},
		}
		if _, err := env.kube.CoreV1().Pods("rotation").Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			return err
		}
		if before, _ = validatedPods(t, port); before == 0 {
			return fmt.Errorf("the API server does not call the rotating server yet")
		}
		return nil
	})

	var (
		ok, failed atomic.Int64
		mu         sync.Mutex
		failures   []string
		issuers    = map[string]bool{}
		maxBundle  int
	)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "rotation"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1.0"}}},
			}
			_, err := env.kube.CoreV1().Pods("rotation").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			if err != nil {
				failed.Add(1)
				mu.Lock()
				failures = append(failures, err.Error())
				mu.Unlock()
				continue
			}
			ok.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := env.client.Get(ctx, client.ObjectKey{Name: "tollgate-rotation"}, &vwc); err == nil {
			n := strings.Count(string(vwc.Webhooks[0].ClientConfig.CABundle), "BEGIN CERTIFICATE")
			mu.Lock()
			maxBundle = max(maxBundle, n)
			mu.Unlock()
		}
		var secret corev1.Secret
		if err := env.client.Get(ctx, client.ObjectKey{Namespace: "tollgate-system", Name: "tollgate-rotation-webhook-tls"}, &secret); err == nil {
			if b, _ := pem.Decode(secret.Data["tls.crt"]); b != nil {
				if c, err := x509.ParseCertificate(b.Bytes); err == nil {
					mu.Lock()
					issuers[c.Issuer.CommonName] = true
					mu.Unlock()
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(done)
	wg.Wait()

	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed during rotation; first: %s", failed.Load(), failed.Load()+ok.Load(), failures[0])
	}
	if ok.Load() < 50 {
		t.Errorf("only %d requests went through", ok.Load())
	}
	if len(issuers) < 2 {
		t.Errorf("the serving certificate was issued by %d CA(s), want a CA rotation: %v", len(issuers), issuers)
	}
	if maxBundle < 2 {
		t.Errorf("the caBundle never held the old and the new CA together (max %d)", maxBundle)
	}
	// The second server answered them: its own metrics count them. A
	// request is counted just after its response is written, so the last
	// one may be counted a moment after its create returned.
	eventually(t, 5*time.Second, func() error {
		if answered, series := validatedPods(t, port); answered-before < ok.Load() {
			return fmt.Errorf("the rotating server validated %d pods of %d created (after %d probes); its validate counters:\n%s", answered-before, ok.Load(), before, series)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "rotat") {
		t.Logf("server log: %s", tail(logs.String(), 4000))
	}
}

// validatedPods reads a server's /metrics and returns how many dry-run Pod
// creates its validating webhook answered, with every validate series of
// the admission counter (what a mismatch is explained by: a create answered
// with another decision, or not asked at all).
func validatedPods(t *testing.T, port int) (int64, string) {
	t.Helper()
	hc := apiServerClient(t) // with a token allowed to get /metrics
	resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Allowed or allowed with a warning (on a loaded machine a policy may
	// time out, which an audit or warn policy reports as a warning): each
	// is an answer from this server.
	re := regexp.MustCompile(`(?m)^tollgate_admission_requests_total\{decision="(?:allowed|warned)",dry_run="true",kind="Pod",operation="CREATE",webhook="validate"\} (\d+)$`)
	ms := re.FindAllSubmatch(body, -1)
	var n int64
	for _, m := range ms {
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		n += v
	}
	all := regexp.MustCompile(`(?m)^tollgate_admission_requests_total\{[^}]*webhook="validate"\} \d+$`).FindAll(body, -1)
	return n, string(bytes.Join(all, []byte("\n")))
}

package fault

import (
	"context"
	"crypto/tls"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func insecureTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the test reads its own replicas
}

// compliantPod passes every enforced policy once the mutating webhook has
// copied the namespace's ownership labels and defaulted the security
// context and resources.
func compliantPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1.0"}}},
	}
}

// violatingPod is denied by pss-baseline-privileged.
func violatingPod(ns, name string) *corev1.Pod {
	p := compliantPod(ns, name)
	priv := true
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: &priv}
	return p
}

// attempt is one create of the load.
type attempt struct {
	name       string
	violating  bool
	start, end time.Time
	err        error
}

// load creates pods in ns from workers goroutines until stop is closed:
// every third one violating, the others compliant.
type load struct {
	ns       string
	mu       sync.Mutex
	attempts []attempt
	seq      atomic.Int64
	prefix   string
}

func runLoad(ctx context.Context, ns, prefix string, workers int, stop <-chan struct{}) (*load, func()) {
	l := &load{ns: ns, prefix: prefix}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := l.seq.Add(1)
				a := attempt{violating: n%3 == 0, start: time.Now()}
				var pod *corev1.Pod
				if a.violating {
					a.name = fmt.Sprintf("%s-bad-%d", prefix, n)
					pod = violatingPod(ns, a.name)
				} else {
					a.name = fmt.Sprintf("%s-ok-%d", prefix, n)
					pod = compliantPod(ns, a.name)
				}
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				_, a.err = env.kube.CoreV1().Pods(ns).Create(cctx, pod, metav1.CreateOptions{})
				cancel()
				a.end = time.Now()
				l.mu.Lock()
				l.attempts = append(l.attempts, a)
				l.mu.Unlock()
				pause := 10 * time.Millisecond
				if a.err != nil && !a.violating {
					pause = 100 * time.Millisecond // as a client backs off
				}
				time.Sleep(pause)
			}
		}()
	}
	return l, wg.Wait
}

// summary is what the load saw.
type summary struct {
	total, admitted, denied, failed int
	violatingAdmitted               []string
	failures                        map[string]int // error text (shortened) → count
	firstFailure, lastFailure       time.Time
	recovered                       time.Time // end of the first success that started after the last failure
}

func (l *load) summarize() summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := summary{failures: map[string]int{}}
	sort.Slice(l.attempts, func(i, j int) bool { return l.attempts[i].start.Before(l.attempts[j].start) })
	for _, a := range l.attempts {
		s.total++
		switch {
		case a.err == nil:
			s.admitted++
			if a.violating {
				s.violatingAdmitted = append(s.violatingAdmitted, a.name)
			}
		case a.violating && strings.Contains(a.err.Error(), "pss-baseline-privileged"):
			s.denied++
		default:
			s.failed++
			s.failures[shorten(a.err.Error())]++
			if s.firstFailure.IsZero() {
				s.firstFailure = a.start
			}
			if a.end.After(s.lastFailure) {
				s.lastFailure = a.end
			}
		}
	}
	if !s.lastFailure.IsZero() {
		for _, a := range l.attempts {
			if a.err == nil && !a.start.Before(s.lastFailure) {
				s.recovered = a.end
				break
			}
		}
	}
	return s
}

// shorten keeps the part of an error that says what failed, without the
// pod's name or the request's port.
func shorten(msg string) string {
	if i := strings.Index(msg, ": "); i >= 0 && strings.Contains(msg[:i], "pods") {
		msg = msg[i+2:]
	}
	for _, cut := range []string{"Post \"", "dial tcp"} {
		if i := strings.Index(msg, cut); i >= 0 {
			if j := strings.Index(msg[i:], ": "); j >= 0 {
				msg = msg[:i] + msg[i+j+2:]
			}
		}
	}
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	return msg
}

// report logs the figures of a run relative to the moment of the fault.
func (s summary) report(t *testing.T, what string, fault time.Time) {
	t.Helper()
	t.Logf("%s: %d creates: %d admitted, %d denied by policy, %d failed", what, s.total, s.admitted, s.denied, s.failed)
	if s.failed > 0 {
		t.Logf("%s: failures from fault%+.2fs to fault%+.2fs; first success after them at fault%+.2fs", what,
			s.firstFailure.Sub(fault).Seconds(), s.lastFailure.Sub(fault).Seconds(), s.recovered.Sub(fault).Seconds())
		for msg, n := range s.failures {
			t.Logf("%s:   %d × %s", what, n, msg)
		}
	}
}

// checkAdmitted lists every pod in the load's namespace whose name has the
// load's prefix and checks that validation and mutation judged each one: no
// violating pod exists, and each carries the namespace's ownership labels
// and the defaulted security context the mutating webhook adds.
func (l *load) checkAdmitted(ctx context.Context, t *testing.T, s summary) {
	t.Helper()
	pods, err := env.kube.CoreV1().Pods(l.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.violatingAdmitted) > 0 {
		t.Errorf("violating pods admitted: %v", s.violatingAdmitted)
	}
	n := 0
	for _, p := range pods.Items {
		if !strings.HasPrefix(p.Name, l.prefix+"-") {
			continue
		}
		n++
		if strings.HasPrefix(p.Name, l.prefix+"-bad-") {
			t.Errorf("pod %s is privileged and was admitted", p.Name)
		}
		for k, v := range ownership {
			if p.Labels[k] != v {
				t.Errorf("pod %s has label %s=%q, want %q: the mutating webhook was skipped", p.Name, k, p.Labels[k], v)
			}
		}
		if sc := p.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("pod %s has no runAsNonRoot: the mutating webhook was skipped", p.Name)
		}
	}
	// Every create that succeeded is there; a create whose answer was lost
	// may be there too, and was checked above like the others.
	if n < s.admitted {
		t.Errorf("%d pods with prefix %s exist, %d creates succeeded", n, l.prefix, s.admitted)
	}
	t.Logf("checked %d pods: each validated and mutated", n)
}

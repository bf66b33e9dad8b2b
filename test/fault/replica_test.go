package fault

import (
	"context"
	"testing"
	"time"
)

// TestReplicaKilledUnderLoad: one of two replicas behind haproxy gets
// SIGKILL while pods are created. No pod may be admitted unjudged; the
// failed creates and the time until creates succeed again are reported.
func TestReplicaKilledUnderLoad(t *testing.T) {
	ctx := context.Background()
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	l, wait := runLoad(ctx, "load", "kill", 4, stop)
	time.Sleep(5 * time.Second)
	// The API server keeps its connections to haproxy open, and haproxy
	// balances connections, not requests (as kube-proxy does): the victim
	// is the replica that answers the load.
	var victim *replica
	served := -1.0
	for _, r := range running() {
		if n := r.metric(ctx, `tollgate_admission_requests_total{`); n > served {
			victim, served = r, n
		}
	}
	inFlight := victim.metric(ctx, `tollgate_admission_in_flight{`)
	killedAt := time.Now()
	victim.kill()
	time.Sleep(10 * time.Second)
	close(stop)
	wait()

	s := l.summarize()
	t.Logf("the killed replica had answered %.0f reviews (%.0f in flight a moment before the kill)", served, inFlight)
	if served == 0 {
		t.Errorf("haproxy sent the killed replica nothing: the run shows nothing")
	}
	s.report(t, "replica SIGKILL", killedAt)
	l.checkAdmitted(ctx, t, s)
	if s.admitted == 0 || s.denied == 0 {
		t.Errorf("the load made no progress: %d admitted, %d denied", s.admitted, s.denied)
	}
	// The survivor kept serving: it answered creates after the kill.
	if s.recovered.IsZero() && s.failed > 0 {
		t.Errorf("no create succeeded after the last failure")
	}
	if err := ensureReplicas(ctx, 2); err != nil {
		t.Fatal(err)
	}
}

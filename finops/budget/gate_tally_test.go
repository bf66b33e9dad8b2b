package budget

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tollgate-dev/tollgate/finops"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// bruteAdmittedSince is the account summed entry by entry, as the gate
// did before it kept tallies: the reference the tallies must equal.
func bruteAdmittedSince(g *Gate, b *v1alpha1.Budget, scope Scope, key admittedKey, create bool, old float64) float64 {
	since := b.CreationTimestamp.Time
	if b.Status.LastScanTime != nil {
		since = b.Status.LastScanTime.Time
	}
	var sum float64
	for k, a := range g.admitted {
		if !a.at.After(since) || !scope.Covers(a.namespace, a.nsLabels, a.labels) {
			continue
		}
		// The Budget counts from the object's first change after its
		// last scan: the cost before that change is in its forecast.
		var base float64
		found := false
		for _, st := range a.steps {
			if st.at.After(since) {
				base, found = st.old, true
				break
			}
		}
		if !found {
			continue
		}
		switch {
		case k != key:
			sum += max(a.latest-base, 0)
		case !create:
			sum += max(old-base, 0)
		}
	}
	return sum
}

// TestTalliesEqualTheAccount drives the gate's account through random
// reservations, settlements, scans, scope changes and Budgets coming and
// going, and checks after every step that each Budget's tally gives what
// summing the whole account gives.
func TestTalliesEqualTheAccount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &Gate{Now: func() time.Time { return clock }}
	budgets := []*v1alpha1.Budget{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ns", UID: "u1", CreationTimestamp: metav1.Time{Time: clock}},
			Spec: v1alpha1.BudgetSpec{Scope: v1alpha1.BudgetScope{}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "finops", Name: "team", UID: "u2", CreationTimestamp: metav1.Time{Time: clock}},
			Spec: v1alpha1.BudgetSpec{Scope: v1alpha1.BudgetScope{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}}},
	}
	namespaces := []string{"shop", "lab"}
	teams := []string{"a", "b"}
	var pending []*policies.Input
	for step := range 3000 {
		clock = clock.Add(time.Duration(rng.IntN(3)) * time.Second)
		switch r := rng.IntN(100); {
		case r < 55: // a change is reserved
			ns := namespaces[rng.IntN(len(namespaces))]
			name := fmt.Sprintf("p%d", rng.IntN(40))
			op := "CREATE"
			if rng.IntN(3) == 0 {
				op = "UPDATE"
			}
			in := &policies.Input{Operation: op, Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Object: map[string]any{"metadata": map[string]any{"name": name, "namespace": ns,
					"labels": map[string]any{"team": teams[rng.IntN(len(teams))]}}},
				Namespace: map[string]any{"metadata": map[string]any{"labels": map[string]any{"team": teams[rng.IntN(len(teams))]}}}}
			var change finops.Change
			change.Old.Monthly.Total = float64(rng.IntN(5)) * 1.37
			change.New.Monthly.Total = float64(rng.IntN(9)) * 2.11
			g.mu.Lock()
			g.reserveLocked(in, change)
			g.mu.Unlock()
			pending = append(pending, in)
		case r < 80 && len(pending) > 0: // a review settles
			i := rng.IntN(len(pending))
			g.Settle(t.Context(), pending[i], rng.IntN(4) != 0)
			pending = append(pending[:i], pending[i+1:]...)
		case r < 90: // a Budget is scanned
			b := budgets[rng.IntN(len(budgets))]
			b.Status.LastScanTime = &metav1.Time{Time: clock.Add(-time.Duration(rng.IntN(5)) * time.Second)}
		case r < 95: // a Budget's scope changes
			b := budgets[1]
			b.Generation++
			b.Spec.Scope.Selector.MatchLabels["team"] = teams[rng.IntN(len(teams))]
		default: // a Budget is deleted and made again under its name
			b := budgets[rng.IntN(len(budgets))]
			b.UID = types.UID(fmt.Sprintf("u%d", step))
			b.CreationTimestamp = metav1.Time{Time: clock}
			b.Status.LastScanTime = nil
		}
		list := &v1alpha1.BudgetList{}
		for _, b := range budgets {
			list.Items = append(list.Items, *b)
		}
		g.mu.Lock()
		g.forgetScanned(list)
		g.keepTallies(list)
		for i := range list.Items {
			b := &list.Items[i]
			scope, err := ScopeOf(b)
			if err != nil {
				t.Fatal(err)
			}
			key := admittedKey{"", "Pod", namespaces[rng.IntN(2)], fmt.Sprintf("p%d", rng.IntN(40))}
			create := rng.IntN(2) == 0
			old := float64(rng.IntN(5))
			got := g.admittedSince(g.tallyLocked(b, scope), key, create, old)
			want := bruteAdmittedSince(g, b, scope, key, create, old)
			if math.Abs(got-want) > 1e-6 {
				g.mu.Unlock()
				t.Fatalf("step %d, Budget %s/%s: the tally gives %.6f, the account %.6f", step, b.Namespace, b.Name, got, want)
			}
		}
		g.mu.Unlock()
	}
}

// A Budget counts an object's change from what the object cost at its
// last scan, even while another Budget, never scanned, keeps the
// object's earlier changes in the account: a ReplicaSet created before
// the scan and scaled from one replica to two after it adds one replica
// to the forecast, not two.
func TestTallyCountsFromTheLastScan(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &Gate{Now: func() time.Time { return clock }}
	scanned := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cap", UID: "u1", CreationTimestamp: metav1.Time{Time: clock}}}
	// Another team's Budget, made since the last scan: it holds back the
	// account's trim (forgetScanned) until it is scanned.
	fresh := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "new", UID: "u2", CreationTimestamp: metav1.Time{Time: clock}}}
	rs := func(op string) *policies.Input {
		return &policies.Input{Operation: op, Kind: policies.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
			Object: map[string]any{"metadata": map[string]any{"name": "rs", "namespace": "shop"}}}
	}
	reserve := func(in *policies.Input, old, next float64) {
		var change finops.Change
		change.Old.Monthly.Total, change.New.Monthly.Total = old, next
		g.mu.Lock()
		g.reserveLocked(in, change)
		g.mu.Unlock()
		g.Settle(t.Context(), in, true)
	}
	clock = clock.Add(time.Second)
	reserve(rs("CREATE"), 0, 29.26)
	clock = clock.Add(2 * time.Second)
	scanned.Status.LastScanTime = &metav1.Time{Time: clock} // its forecast holds the first replica
	clock = clock.Add(2 * time.Second)
	reserve(rs("UPDATE"), 29.26, 58.52)

	list := &v1alpha1.BudgetList{Items: []v1alpha1.Budget{*scanned, *fresh}}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.forgetScanned(list)
	g.keepTallies(list)
	scope, err := ScopeOf(scanned)
	if err != nil {
		t.Fatal(err)
	}
	key := admittedKey{"apps", "Deployment", "shop", "other"}
	if got := g.admittedSince(g.tallyLocked(scanned, scope), key, true, 0); math.Abs(got-29.26) > 1e-9 {
		t.Errorf("admitted since the scan: %.2f, want 29.26 (the second replica)", got)
	}
	if got := bruteAdmittedSince(g, scanned, scope, key, true, 0); math.Abs(got-29.26) > 1e-9 {
		t.Errorf("the account summed: %.2f, want 29.26", got)
	}
	// The same ReplicaSet changed again counts what it adds to its cost
	// at the scan.
	if got := g.admittedSince(g.tallyLocked(scanned, scope), admittedKey{"apps", "ReplicaSet", "shop", "rs"}, false, 58.52); math.Abs(got-29.26) > 1e-9 {
		t.Errorf("the ReplicaSet's own earlier change: %.2f, want 29.26", got)
	}
}

// BenchmarkCheckAfterManyAdmissions: one Budget's check with 50,000
// changes admitted since its scan, the account a burst of creates leaves.
func BenchmarkCheckAfterManyAdmissions(b *testing.B) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &Gate{Now: func() time.Time { clock = clock.Add(time.Millisecond); return clock }}
	bud := &v1alpha1.Budget{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "ns", UID: "u1", CreationTimestamp: metav1.Time{Time: clock}}}
	scope, err := ScopeOf(bud)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 50000 {
		in := &policies.Input{Operation: "CREATE", Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Object: map[string]any{"metadata": map[string]any{"name": fmt.Sprintf("p%d", i), "namespace": "shop"}}}
		var change finops.Change
		change.New.Monthly.Total = 1
		g.mu.Lock()
		g.reserveLocked(in, change)
		g.mu.Unlock()
		g.Settle(b.Context(), in, true)
	}
	key := admittedKey{"", "Pod", "shop", "new"}
	b.Run("tally", func(b *testing.B) {
		for b.Loop() {
			g.mu.Lock()
			_ = g.admittedSince(g.tallyLocked(bud, scope), key, true, 0)
			g.mu.Unlock()
		}
	})
	b.Run("summed", func(b *testing.B) { // what each check cost before tallies
		for b.Loop() {
			g.mu.Lock()
			_ = bruteAdmittedSince(g, bud, scope, key, true, 0)
			g.mu.Unlock()
		}
	})
}

// Equal label sets share one map; different ones, however their keys and
// values could run together, stay apart and unchanged.
func TestLabelSetsIntern(t *testing.T) {
	var l labelSets
	a := l.intern(map[string]string{"team": "a", "app": "web"})
	b := l.intern(map[string]string{"app": "web", "team": "a"})
	if reflect.ValueOf(a).UnsafePointer() != reflect.ValueOf(b).UnsafePointer() {
		t.Error("equal label sets are held twice")
	}
	sets := []map[string]string{
		{}, {"a": ""}, {"": "a"}, {"a": "1:b"}, {"a:1": "b"}, {"a": "b", "c": "d"}, {"a": "b1:c1:d"}, {"ab": "cd"}, {"a": "bcd"},
	}
	for i, m := range sets {
		want := maps.Clone(m)
		if got := l.intern(m); !maps.Equal(got, want) {
			t.Errorf("set %d: interned %v, want %v", i, got, want)
		}
	}
	if len(l.byKey) != len(sets)+1 {
		t.Errorf("%d sets held, want %d", len(l.byKey), len(sets)+1)
	}
	for range maxLabelSets + 10 { // the table starts again past its bound
		l.intern(map[string]string{"n": strconv.Itoa(len(l.byKey))})
	}
	if len(l.byKey) > maxLabelSets {
		t.Errorf("%d sets held, over the bound %d", len(l.byKey), maxLabelSets)
	}
}

// BenchmarkAccountMemory reports the heap the account holds per admitted
// Pod when a burst creates 50,000 Pods from one template in one namespace.
func BenchmarkAccountMemory(b *testing.B) {
	ns := map[string]any{"metadata": map[string]any{"name": "shop", "labels": map[string]any{
		"team": "payments", "owner": "alice", "cost-center": "CC-1234", "environment": "prod", "kubernetes.io/metadata.name": "shop"}}}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g := &Gate{}
		for i := range 50000 {
			in := &policies.Input{Operation: "CREATE", Kind: policies.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: ns,
				Object: map[string]any{"metadata": map[string]any{"name": fmt.Sprintf("web-%d", i), "namespace": "shop",
					"labels": map[string]any{"app": "web", "team": "payments", "owner": "alice", "cost-center": "CC-1234", "pod-template-hash": "5d9c7f"}}}}
			var change finops.Change
			change.New.Monthly.Total = 1
			g.mu.Lock()
			g.reserveLocked(in, change)
			g.mu.Unlock()
			g.Settle(b.Context(), in, true)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/50000, "B/pod")
		runtime.KeepAlive(g)
	}
}

package alerts

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkEncode formats one alert with ten workloads for each receiver.
func BenchmarkEncode(b *testing.B) {
	a := testAlert(func(a *Alert) {
		for i := range 10 {
			a.TopWorkloads = append(a.TopWorkloads, Workload{Kind: "Deployment", Namespace: "payments", Name: fmt.Sprint("svc-", i), Cost: float64(i)})
		}
	})
	for _, typ := range []ChannelType{Slack, Teams, CloudEvents} {
		b.Run(string(typ), func(b *testing.B) {
			var size int
			for b.Loop() {
				norm, omitted := a.normalized()
				p, err := encode(typ, norm, omitted, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				size = len(p.body)
			}
			b.ReportMetric(float64(size), "bytes/payload")
		})
	}
}

// BenchmarkDeliver posts alerts to a loopback receiver that accepts them:
// the cost of a delivery without the network.
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	n, err := New(Options{
		Routes: Routes{Default: "ops", Channels: map[string]Channel{
			"ops": {Type: Slack, URLSecret: SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: "ops"}},
		}},
		Secrets: mapSecrets(map[string]string{"tollgate-system/budget-webhooks/ops": srv.URL + slackPath}),
	})
	if err != nil {
		b.Fatal(err)
	}
	a := testAlert()
	for b.Loop() {
		if res := n.Deliver(b.Context(), a); !res.Delivered {
			b.Fatal(res.Err)
		}
	}
}

package alerts_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tollgate-dev/tollgate/finops/alerts"
)

// The scanner builds one Notifier from its routes, and delivers each
// threshold crossed with the Budget's and its Namespace's annotations.
func ExampleNotifier_Deliver() {
	readSecret := func(ctx context.Context, namespace, name, key string) ([]byte, error) {
		return nil, fmt.Errorf("read Secret %s/%s here, with a client or a cache", namespace, name)
	}
	n, err := alerts.New(alerts.Options{
		Routes: alerts.Routes{
			Default: "platform-finops",
			Channels: map[string]alerts.Channel{
				"platform-finops": {Type: alerts.Slack, URLSecret: alerts.SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: "platform-finops"}},
				"payments-teams":  {Type: alerts.Teams, URLSecret: alerts.SecretKeyRef{Namespace: "tollgate-system", Name: "budget-webhooks", Key: "payments-teams"}},
			},
		},
		Secrets: readSecret,
	})
	if err != nil {
		panic(err)
	}
	budgetAnnotations := map[string]string{}
	namespaceAnnotations := map[string]string{alerts.ChannelAnnotation: "payments-teams"}
	res := n.Deliver(context.Background(), alerts.Alert{
		ID:          "3f9c2b7e/2025-11-01/80",
		Budget:      "payments/monthly",
		Scope:       "namespace payments",
		Namespace:   "payments",
		Threshold:   80,
		Spend:       4120,
		Amount:      5000,
		Forecast:    5630,
		Currency:    "USD",
		PeriodStart: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC),
		PeriodEnd:   time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC),
	}, budgetAnnotations, namespaceAnnotations)
	if !res.Delivered {
		slog.Error("budget alert not delivered", "alert", res.AlertID, "channel", res.Channel,
			"attempts", res.Attempts, "permanent", res.Permanent, "error", res.Err)
	}
}

// Summary is the sentence every message leads with.
func ExampleAlert_Summary() {
	a := alerts.Alert{
		Scope: "namespace payments", Spend: 4120, Amount: 5000, Forecast: 5630, Currency: "USD",
		PeriodStart: time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC),
		PeriodEnd:   time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC),
	}
	fmt.Println(a.Summary())
	// Output: namespace payments is at 82 % of its monthly budget: $4,120 of $5,000, forecast $5,630 by Nov 30.
}

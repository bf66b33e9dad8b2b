package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestCachedNamespaces(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "payments"}}}
	empty := fake.NewClientBuilder().WithScheme(Scheme()).Build()
	withShop := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(ns).Build()
	var liveCalls int
	countingLive := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(ns).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			liveCalls++
			return c.Get(ctx, key, obj, opts...)
		},
	}).Build()
	broken := fake.NewClientBuilder().WithScheme(Scheme()).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("connection refused")
		},
	}).Build()
	notFound := fake.NewClientBuilder().WithScheme(Scheme()).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "shop")
		},
	}).Build()

	cases := []struct {
		name      string
		cache     client.Reader
		live      client.Reader
		wantErr   string
		wantLive  int
		wantLabel string
	}{
		{"from the cache, no live read", withShop, countingLive, "", 0, "payments"},
		{"a cache miss falls back to a live GET", empty, countingLive, "", 1, "payments"},
		{"a failed cache read is an error, never no labels", broken, countingLive, "reading namespace shop: connection refused", 0, ""},
		{"a failed live read is an error", empty, broken, "reading namespace shop: connection refused", 0, ""},
		{"a namespace that does not exist is an error", notFound, notFound, `reading namespace shop: namespaces "shop" not found`, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			liveCalls = 0
			got, err := (&CachedNamespaces{Cache: tc.cache, Live: tc.live}).Namespace(context.Background(), "shop")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || got != nil {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if liveCalls != tc.wantLive {
				t.Errorf("live reads = %d, want %d", liveCalls, tc.wantLive)
			}
			labels := got["metadata"].(map[string]any)["labels"].(map[string]any)
			if labels["team"] != tc.wantLabel {
				t.Errorf("labels = %v", labels)
			}
		})
	}
}

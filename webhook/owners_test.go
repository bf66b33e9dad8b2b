package webhook

import (
	"context"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestCachedNamespacesOwner(t *testing.T) {
	rs := func(uid string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: k8stypes.UID(uid)}}
	}
	empty := fake.NewClientBuilder().WithScheme(Scheme()).Build()
	cached := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(rs("u1")).Build()
	stale := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(rs("u0")).Build()
	var liveCalls int
	live := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(rs("u1")).WithInterceptorFuncs(interceptor.Funcs{
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
	web1 := policies.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "u1"}
	cases := []struct {
		name      string
		cache     client.Reader
		ref       policies.OwnerRef
		namespace string
		want      bool
		wantLive  int
		wantErr   string
	}{
		{"in the cache", cached, web1, "shop", true, 0, ""},
		{"a cache miss reads live", empty, web1, "shop", true, 1, ""},
		{"another UID in the cache reads live", stale, web1, "shop", true, 1, ""},
		{"wrong UID everywhere", cached, policies.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "forged"}, "shop", false, 1, ""},
		{"no such owner", empty, policies.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "nowhere", UID: "u1"}, "shop", false, 1, ""},
		{"another namespace's", cached, web1, "other", false, 1, ""},
		{"a version that is not served reads v1", cached, policies.OwnerRef{APIVersion: "apps/v9", Kind: "ReplicaSet", Name: "web-1", UID: "u1"}, "shop", true, 0, ""},
		{"a failed read is an error", broken, web1, "shop", false, 0, "reading ReplicaSet shop/web-1, the controller the object names: connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			liveCalls = 0
			c := &CachedNamespaces{Cache: tc.cache, Live: live}
			got, err := c.Owner(context.Background(), tc.namespace, tc.ref)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || liveCalls != tc.wantLive {
				t.Errorf("found = %v with %d live reads, want %v with %d", got, liveCalls, tc.want, tc.wantLive)
			}
		})
	}
}

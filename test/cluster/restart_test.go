package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestRestart: a ConfigMap written before kube-apiserver and then etcd are
// restarted is read back after each, through the same client and the same
// kubeconfig; a restart after Stop, or with a context already done, fails
// and says why.
func TestRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	defer c.Stop()
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	cms := cs.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	server := c.Server()

	done, stop := context.WithCancel(ctx)
	stop()
	if err := c.RestartAPIServer(done); err == nil || !errors.Is(err, context.Canceled) {
		t.Errorf("RestartAPIServer(cancelled context) = %v, want context.Canceled", err)
	}

	if err := c.RestartAPIServer(ctx); err != nil {
		t.Fatalf("RestartAPIServer() = %v", err)
	}
	if c.Server() != server {
		t.Errorf("the API server moved from %s to %s", server, c.Server())
	}
	readBack(ctx, t, cms.Get, "before")
	if _, _, err := c.Kubectl(ctx, "get", "configmap", "before"); err != nil {
		t.Errorf("the kubeconfig no longer works after the API server restart: %v", err)
	}

	if err := c.RestartEtcd(ctx); err != nil {
		t.Fatalf("RestartEtcd() = %v", err)
	}
	readBack(ctx, t, cms.Get, "before")
	// Writes reach the restarted etcd too.
	eventuallyOK(ctx, t, func() error {
		_, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{})
		return err
	})

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for name, restart := range map[string]func(context.Context) error{"kube-apiserver": c.RestartAPIServer, "etcd": c.RestartEtcd} {
		if err := restart(ctx); err == nil || !strings.Contains(err.Error(), "restarting "+name+": the cluster is stopped") {
			t.Errorf("restarting %s after Stop = %v, want it to say the cluster is stopped", name, err)
		}
	}
}

func readBack(ctx context.Context, t *testing.T, get func(context.Context, string, metav1.GetOptions) (*corev1.ConfigMap, error), name string) {
	t.Helper()
	eventuallyOK(ctx, t, func() error {
		cm, err := get(ctx, name, metav1.GetOptions{})
		if err == nil && cm.Data["k"] != "v" {
			return errors.New("the ConfigMap lost its data")
		}
		return err
	})
}

// eventuallyOK retries f for up to 30 seconds: a restarted etcd takes a
// moment to be used again by the API server.
func eventuallyOK(ctx context.Context, t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

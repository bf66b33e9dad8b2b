package registry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestPushAndPull(t *testing.T) {
	ctx := context.Background()
	r, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(r.Host()+"/team/app:1.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push: %v", err)
	}
	want, _ := img.Digest()
	desc, err := remote.Head(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != want {
		t.Fatalf("the registry resolves the tag to %s, want %s", desc.Digest, want)
	}
}

func TestBasicAuth(t *testing.T) {
	ctx := context.Background()
	r, err := Start(ctx, Options{Username: "ci", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	img, _ := random.Image(256, 1)
	ref, _ := name.ParseReference(r.Host()+"/private/app:1.0", name.Insecure)
	err = remote.Write(ref, img, remote.WithContext(ctx))
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push: %v, want 401", err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})
	if err := remote.Write(ref, img, remote.WithContext(ctx), auth); err != nil {
		t.Fatalf("authenticated push: %v", err)
	}
	if _, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: "ci", Password: "wrong"})); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}

func TestStopAndBadBinary(t *testing.T) {
	r, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := r.Host()
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
		resp.Body.Close()
		t.Fatal("the registry still answers after Stop")
	}
	_, err = Start(context.Background(), Options{Binary: "/nonexistent/registry"})
	if err == nil || !strings.Contains(err.Error(), "apt-get install docker-registry") {
		t.Fatalf("missing binary: %v", err)
	}
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// StartInMemory serves go-containerregistry's in-memory implementation of
// the OCI distribution API on a loopback port, for the local demo, which
// must not need the Debian package. Tests use Start, the real registry.
func StartInMemory(ctx context.Context) (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("in-memory registry: %v", err)
		}
	}()
	r := &Registry{host: l.Addr().String(), exited: exited}
	r.shutdown = func() { _ = srv.Close() }
	return r, nil
}

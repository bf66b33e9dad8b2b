package nsdefaults

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/tollgate-dev/tollgate/policies"
)

func TestNewValidates(t *testing.T) {
	c := fake.NewClientBuilder().Build()
	good := func() Options {
		return Options{REST: &rest.Config{}, Mapper: meta.NewDefaultRESTMapper(nil), Client: c, Reader: c,
			Config: func() *policies.Config { return nil }}
	}
	cases := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no client", func(o *Options) { o.Client = nil }, "REST, Mapper, Client, Reader and Config are required"},
		{"no config", func(o *Options) { o.Config = nil }, "REST, Mapper, Client, Reader and Config are required"},
		{"negative resync", func(o *Options) { o.Resync = -time.Second }, "namespace defaults: resync -1s is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.change(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	ctl, err := New(good())
	if err != nil {
		t.Fatal(err)
	}
	if ctl.opts.Resync != 10*time.Minute || ctl.opts.Workers != 2 {
		t.Errorf("defaults: resync %s, workers %d", ctl.opts.Resync, ctl.opts.Workers)
	}
	// Trigger never blocks, on a replica that does not lead as well.
	for range 3 {
		ctl.Trigger()
	}
}

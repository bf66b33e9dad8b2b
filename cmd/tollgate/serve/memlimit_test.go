package serve

import (
	"bytes"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestContainerMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		want    int64
		wantErr string
	}{
		{"cgroup v2 limit", map[string]string{"memory.max": "268435456\n"}, 268435456, ""},
		{"cgroup v2 unlimited", map[string]string{"memory.max": "max\n"}, 0, ""},
		{"cgroup v1 limit", map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, 536870912, ""},
		{"cgroup v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, ""},
		{"v2 wins over v1", map[string]string{"memory.max": "1048576", "memory/memory.limit_in_bytes": "2097152"}, 1048576, ""},
		{"no cgroup files", nil, 0, ""},
		{"garbage", map[string]string{"memory.max": "lots"}, 0, `memory.max holds "lots", want a positive number of bytes or max`},
		{"negative", map[string]string{"memory.max": "-1"}, 0, `holds "-1"`},
		{"zero", map[string]string{"memory.max": "0"}, 0, `holds "0"`},
		{"overflow", map[string]string{"memory.max": "99999999999999999999999"}, 0, `holds "99999999999999999999999"`},
		{"long garbage is cut", map[string]string{"memory.max": strings.Repeat("x", 5000)}, 0, strings.Repeat("x", 40) + `..."`},
		{"a directory", map[string]string{"memory.max/x": "1"}, 0, "reading the memory limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ContainerMemoryLimit(writeFiles(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// The soft limit is the configured one capped at 90 % of the container's,
// or that share alone when none is configured; GOMEMLIMIT stays; the limit
// in force is logged either way.
func TestSetMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const mi = 1 << 20
	v2 := func(limit string) map[string]string { return map[string]string{"memory.max": limit} }
	for _, tc := range []struct {
		name, gomemlimit string
		files            map[string]string
		configured       int64
		want             int64
		logs             string
	}{
		{"configured, under the container's", "", v2("268435456"), 64 * mi, 64 * mi, `"source":"flag","bytes":67108864,"container":268435456`},
		{"configured, over the container's", "", v2("67108864"), 64 * mi, 60397977, `"source":"container","bytes":60397977,"container":67108864`},
		{"none configured", "", v2("268435456"), 0, 241591910, `"source":"container","bytes":241591910`},
		{"GOMEMLIMIT stays", "100MiB", v2("268435456"), 64 * mi, math.MaxInt64, `"source":"GOMEMLIMIT"`},
		{"no container limit", "", v2("max"), 64 * mi, 64 * mi, `"source":"flag","bytes":67108864,"container":0`},
		{"no limit at all", "", v2("max"), 0, math.MaxInt64, `"source":"none"`},
		{"unreadable container limit", "", v2("lots"), 64 * mi, 64 * mi, `container memory limit not read","error":"reading the memory limit: `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			var buf bytes.Buffer
			setMemoryLimit(writeFiles(t, tc.files), tc.gomemlimit, tc.configured, slog.New(slog.NewJSONHandler(&buf, nil)))
			if got := debug.SetMemoryLimit(-1); got != tc.want {
				t.Errorf("limit %d, want %d", got, tc.want)
			}
			if !strings.Contains(buf.String(), tc.logs) {
				t.Errorf("log %s lacks %s", buf.String(), tc.logs)
			}
		})
	}
}

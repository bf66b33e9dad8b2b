package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryLimitShare is the share of the container's memory limit the Go
// runtime's soft limit may reach: the rest is headroom for what the
// runtime does not count (page cache, fragmentation), so the collector
// works harder before the kernel kills the process.
const MemoryLimitShare = 0.9

// ContainerMemoryLimit reads the memory limit of the cgroup the process
// runs in under root (/sys/fs/cgroup): cgroup v2's memory.max, else v1's
// memory/memory.limit_in_bytes. It returns 0 when there is no limit
// ("max", or v1's page-rounded maximum) and an error naming the file when
// its content is not a limit.
func ContainerMemoryLimit(root string) (int64, error) {
	for _, name := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		path := filepath.Join(root, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("reading the memory limit: %w", err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("reading the memory limit: %s holds %q, want a positive number of bytes or max", path, truncateValue(s))
		}
		if n >= math.MaxInt64/2 { // cgroup v1's "unlimited"
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}

func truncateValue(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// setMemoryLimit sets the Go runtime's soft memory limit: the configured
// one (--memory-limit; 0 for none), capped at MemoryLimitShare of the
// container's limit read under root, or that share alone when none is
// configured. GOMEMLIMIT, when set, is the operator's choice and stays.
// The limit in force is logged either way; a container limit that cannot
// be read is logged and leaves the configured one.
func setMemoryLimit(root, gomemlimit string, configured int64, logger *slog.Logger) {
	if gomemlimit != "" {
		logger.Info("memory limit", "source", "GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return
	}
	var container int64
	if root != "" {
		var err error
		if container, err = ContainerMemoryLimit(root); err != nil {
			logger.Warn("container memory limit not read", "error", err)
		}
	}
	soft, source := configured, "flag"
	if ceiling := int64(float64(container) * MemoryLimitShare); container > 0 && (soft <= 0 || soft > ceiling) {
		soft, source = ceiling, "container"
	}
	if soft <= 0 {
		logger.Info("memory limit", "source", "none", "container", container)
		return
	}
	debug.SetMemoryLimit(soft)
	logger.Info("memory limit", "source", source, "bytes", soft, "container", container)
}

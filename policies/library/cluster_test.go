package library_test

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/library"
)

// TestNewestMinorFollowsPodSecurityLatest keeps the supported-release
// window of tollgate.lib.cluster (the newest minor release the library
// knows) on the release the Pod Security Standards policies call latest.
func TestNewestMinorFollowsPodSecurityLatest(t *testing.T) {
	src, err := fs.ReadFile(library.FS(), "lib/cluster.rego")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^newest_minor := (\d+)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("lib/cluster.rego defines no newest_minor := <number>")
	}
	if got, want := "v1."+string(m[1]), policies.PodSecurityLatest; got != want {
		t.Errorf("tollgate.lib.cluster.newest_minor is %s, policies.PodSecurityLatest %s: move both together", got, want)
	}
}

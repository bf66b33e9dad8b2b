package chart

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// dockerfile reads the instructions of the repository's Dockerfile, by
// instruction; repeated ones (COPY) are joined by newlines.
func dockerfile(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if prev, ok := out[instr]; ok {
			rest = prev + "\n" + rest
		}
		out[instr] = strings.TrimSpace(rest)
	}
	return out
}

// imageEntrypoint is the image's ENTRYPOINT, which the chart's arguments
// follow.
func imageEntrypoint(t *testing.T) []string {
	t.Helper()
	var ep []string
	if err := json.Unmarshal([]byte(dockerfile(t)["ENTRYPOINT"]), &ep); err != nil || len(ep) == 0 {
		t.Fatalf("Dockerfile: ENTRYPOINT is not a JSON array (%v)", err)
	}
	return ep
}

// TestImage: the image runs `tollgate serve` as the user the chart's
// securityContext names, on a distroless static base, from the binary
// make image-binary writes (bin/image/<os>-<arch>/tollgate).
func TestImage(t *testing.T) {
	df := dockerfile(t)
	if diff := cmp.Diff([]string{"/usr/local/bin/tollgate", "serve"}, imageEntrypoint(t)); diff != "" {
		t.Errorf("ENTRYPOINT (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(df["FROM"], "gcr.io/distroless/static") || !strings.HasSuffix(df["FROM"], ":nonroot") {
		t.Errorf("FROM %s: want a distroless static nonroot base", df["FROM"])
	}
	dep := find(t, objects(t, render(t, defaultRelease)), "Deployment", "tollgate")
	psc := dig(dep, "spec", "template", "spec", "securityContext").(map[string]any)
	want := strings.TrimSuffix(strings.TrimSuffix(df["USER"], ":65532"), ":")
	if want != "65532" || fmt.Sprint(psc["runAsUser"]) != "65532" || fmt.Sprint(psc["runAsGroup"]) != "65532" {
		t.Errorf("Dockerfile USER %s, chart runAsUser %v runAsGroup %v: want 65532 throughout", df["USER"], psc["runAsUser"], psc["runAsGroup"])
	}
	if !strings.Contains(df["COPY"], "bin/image/${TARGETOS}-${TARGETARCH}/tollgate") {
		t.Errorf("COPY %s: want the binary make image-binary writes", df["COPY"])
	}
	// The trivy the chart's --trivy names when imageScanning is on.
	if !strings.Contains(df["COPY"], "bin/image/${TARGETOS}-${TARGETARCH}/trivy /usr/local/bin/trivy") {
		t.Errorf("COPY %s: want trivy at /usr/local/bin/trivy, where the chart's --trivy points", df["COPY"])
	}
}

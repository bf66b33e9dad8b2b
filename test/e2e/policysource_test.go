package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/tollgate-dev/tollgate/policies/ocisource"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
	"github.com/tollgate-dev/tollgate/test/proc"
	"github.com/tollgate-dev/tollgate/test/registry"
)

// probePolicy denies ConfigMaps labelled tollgate-probe with the value the
// set's data names: each version of the set denies another value.
const probePolicy = `# METADATA
# title: Probe of the policy set in force
# custom:
#   id: corp-probe
#   severity: high
#   scope: object
#   kinds: [ConfigMap]
package corp.probe

violation contains {"msg": sprintf("tollgate-probe=%s is denied by policy set %s", [data.corp.probe.deny, data.corp.probe.deny])} if {
	input.object.metadata.labels["tollgate-probe"] == data.corp.probe.deny
}
`

// setRegistry is a real registry holding policy sets under one reference,
// and the cosign key that signs them.
type setRegistry struct {
	reg    *registry.Registry
	ref    string
	key    signature.Signer
	trust  *ocisource.Trust
	client ocisource.Registry
}

// newSetRegistry starts a registry (stopped with the test) for sets
// pushed to repoTag ("platform/policies:prod").
func newSetRegistry(t *testing.T, repoTag string) *setRegistry {
	t.Helper()
	reg, err := registry.Start(context.Background(), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	key, pub, err := registry.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	trust, err := ocisource.NewTrust(map[string][]byte{"cosign.pub": pub})
	if err != nil {
		t.Fatal(err)
	}
	return &setRegistry{reg: reg, ref: "oci://" + reg.Host() + "/" + repoTag, key: key, trust: trust}
}

// push packs fsys, pushes it to the reference and, if sign, signs it.
func (r *setRegistry) push(t *testing.T, fsys fstest.MapFS, sign bool) name.Digest {
	t.Helper()
	ctx := context.Background()
	b, err := ocisource.Pack(fsys, ocisource.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := r.client.ParseReference(r.ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.client.Push(ctx, tag, b)
	if err != nil {
		t.Fatal(err)
	}
	if sign {
		if err := r.client.Sign(ctx, d, r.key); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// TestPolicySourceAcrossClusters runs two clusters (the shared API server
// and one started here), one registry and one server per cluster, both
// following the same tag: a set pushed and signed once is enforced by
// both, a new version rolls out to both, an unsigned version is refused by
// both with the last good set enforcing, and so it stays with the
// registry down.
func TestPolicySourceAcrossClusters(t *testing.T) {
	ctx := context.Background()
	src := newSetRegistry(t, "platform/policies:prod")
	ref, trust, client := src.ref, src.trust, src.client
	push := func(deny string, sign bool) name.Digest {
		t.Helper()
		return src.push(t, fstest.MapFS{
			"probe/probe.rego": {Data: []byte(probePolicy)},
			"data.json":        {Data: []byte(`{"corp":{"probe":{"deny":"` + deny + `"}}}`)},
		}, sign)
	}
	v1 := push("red", true)

	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	second, err := cluster.Start(ctx, cluster.Options{
		WebhookClientCert: true,
		CRDDirs:           []string{filepath.Join(root, "charts", "tollgate", "crds"), filepath.Join(root, "charts", "tollgate", "crds", "kyverno")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop()

	type member struct {
		name    string
		cluster *cluster.Cluster
		log     *proc.Buffer
		port    int
	}
	members := []*member{{name: "shared", cluster: env.cluster}, {name: "second", cluster: second}}
	for _, m := range members {
		m.log = &proc.Buffer{}
		stop, port, err := startServer(ctx, serverOptions{
			name: "tollgate-policyset", rest: m.cluster.Config(), clientCAFile: m.cluster.WebhookClientCAFile(),
			log: m.log, decisions: &proc.Buffer{}, noAudit: true,
			policySource: &ocisource.Options{Ref: ref, Trust: trust, Registry: client, Interval: 500 * time.Millisecond, MaxBackoff: 2 * time.Second},
		})
		if err != nil {
			t.Fatalf("%s: %v\n%s", m.name, err, m.log.String())
		}
		defer func(c *cluster.Cluster) {
			stop()
			// A stopped server's webhooks would refuse every later test's
			// requests: remove them from the cluster.
			for _, kind := range []string{"validatingwebhookconfiguration", "mutatingwebhookconfiguration"} {
				_, _, _ = c.Kubectl(ctx, "delete", kind, "tollgate-policyset", "--ignore-not-found")
			}
		}(m.cluster)
		m.port = port
		ns := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"policyset","labels":{"team":"platform","owner":"ops","cost-center":"CC-0001"}}}`
		if _, stderr, err := m.cluster.KubectlWithStdin(ctx, ns, "apply", "-f", "-"); err != nil {
			t.Fatalf("%s: %v: %s", m.name, err, stderr)
		}
	}
	defer func() {
		if t.Failed() {
			for _, m := range members {
				t.Logf("%s server log:\n%s", m.name, tail(m.log.String(), 6<<10))
			}
		}
	}()

	// judged applies a ConfigMap labelled value (dry run) and returns
	// the denial, "" when admitted.
	judged := func(m *member, value string) (string, error) {
		cm := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"probe","namespace":"policyset","labels":{"tollgate-probe":%q}}}`, value)
		_, stderr, err := m.cluster.KubectlWithStdin(ctx, cm, "apply", "--dry-run=server", "-f", "-")
		switch {
		case err == nil:
			return "", nil
		case strings.Contains(stderr, "corp-probe"):
			return strings.TrimSpace(stderr), nil
		}
		return "", fmt.Errorf("%s: %w: %s", m.name, err, stderr)
	}
	enforcing := func(denied, admitted string) {
		t.Helper()
		for _, m := range members {
			eventually(t, time.Minute, func() error {
				msg, err := judged(m, denied)
				if err != nil {
					return err
				}
				if msg == "" {
					return fmt.Errorf("%s: tollgate-probe=%s admitted", m.name, denied)
				}
				if msg, err = judged(m, admitted); err != nil || msg != "" {
					return fmt.Errorf("%s: tollgate-probe=%s: %w %s", m.name, admitted, err, msg)
				}
				return nil
			})
		}
	}
	inForce := func(m *member) string {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test server's own certificate
		resp, err := hc.Get(fmt.Sprintf("https://127.0.0.1:%d/version", m.port))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct {
			PolicySet struct{ Ref, Digest, Revision string } `json:"policySet"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v.PolicySet.Digest
	}

	enforcing("red", "blue")
	for _, m := range members {
		if got := inForce(m); got != v1.DigestStr() {
			t.Fatalf("%s: /version says %s, want %s", m.name, got, v1.DigestStr())
		}
	}
	dir := t.TempDir()
	probe := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"probe","namespace":"policyset","labels":{"tollgate-probe":"red"}}}`
	if err := os.WriteFile(filepath.Join(dir, "probe.yaml"), []byte(probe), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := consoleIn(t, second, dir, "apply", "--dry-run=server", "-f", "probe.yaml")
	if err == nil || !strings.Contains(out, "[corp-probe]") {
		t.Errorf("second cluster, set v1 (%s): %v\n%s", v1.DigestStr(), err, out)
	}
	docexample.Check(t, root, "e2e-policysource-second-cluster", out)

	// A new version rolls out to both.
	v2 := push("blue", true)
	enforcing("blue", "red")
	for _, m := range members {
		if got := inForce(m); got != v2.DigestStr() {
			t.Fatalf("%s: /version says %s, want %s", m.name, got, v2.DigestStr())
		}
	}
	t.Logf("shared server log, the rollout:\n%s", grepLines(members[0].log.String(), v2.DigestStr()))

	// An unsigned version is refused by both; v2 stays in force.
	v3 := push("green", false)
	waitLogged := func(what string, parts ...string) {
		t.Helper()
		for _, m := range members {
			eventually(t, time.Minute, func() error {
				for _, line := range strings.Split(m.log.String(), "\n") {
					if strings.Contains(line, "policy set refused") && containsAll([]string{line}, parts) {
						return nil
					}
				}
				return fmt.Errorf("%s: no refusal logged for %s", m.name, what)
			})
		}
	}
	waitLogged("the unsigned version", v3.DigestStr(), `"reason":"signature"`, "is not signed")
	enforcing("blue", "green")
	t.Logf("second server log, the unsigned version:\n%s", grepLines(members[1].log.String(), v3.DigestStr()))
	// The refusal is an Event on the server's namespace (a
	// cluster-scoped object, so the Event is in the default namespace).
	eventually(t, time.Minute, func() error {
		out, _, err := second.Kubectl(ctx, "get", "events", "-A", "--field-selector", "reason=PolicySetRefused", "-o", "jsonpath={.items[*].message}")
		if err != nil || !strings.Contains(out, v3.DigestStr()) {
			return fmt.Errorf("no PolicySetRefused event naming %s: %w %q", v3.DigestStr(), err, out)
		}
		return nil
	})

	// The registry goes away: both keep enforcing v2.
	if err := src.reg.Stop(); err != nil {
		t.Fatal(err)
	}
	waitLogged("the registry down", `"reason":"registry"`)
	enforcing("blue", "red")
	for _, m := range members {
		if got := inForce(m); got != v2.DigestStr() {
			t.Fatalf("%s: /version says %s with the registry down, want %s", m.name, got, v2.DigestStr())
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

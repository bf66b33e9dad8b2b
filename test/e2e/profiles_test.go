package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/test/cluster"
	"github.com/tollgate-dev/tollgate/test/docexample"
)

// innovationProfile is a path where the policies warn instead of
// enforcing, and its warnings say what the team owns.
const innovationProfile = `apiVersion: tollgate.dev/v1alpha1
kind: TollgateProfile
metadata: {name: innovation}
spec:
  description: teams trying things out
  notice: "not on the golden path: no platform backups or monitoring"
  policies:
    "*": warn
%s`

func profileNamespace(name, profile string) string {
	label := ""
	if profile != "" {
		label = fmt.Sprintf(`,"tollgate.dev/path":%q`, profile)
	}
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":{"team":"labs","owner":"alice","cost-center":"CC-4242"%s}}}`, name, label)
}

// asUser runs kubectl apply as another user, in system:masters so that
// RBAC allows everything and only Tollgate judges.
func asUser(t *testing.T, user, manifest string) (string, string, error) {
	t.Helper()
	return env.cluster.KubectlWithStdin(context.Background(), manifest, "apply", "-f", "-", "--as", user, "--as-group", "system:masters")
}

// Namespace profiles on the real API server: the same privileged
// Deployment is denied on the golden path and warned, with the path's
// notice, on the innovation path; only profiles.changers move a
// namespace between paths, and each move is in the decision log; a
// TollgateProfile that names a policy that does not exist is refused in
// its status and its last good version stays in force.
func TestProfiles(t *testing.T) {
	ctx := context.Background()
	root, err := cluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := apply(t, fmt.Sprintf(innovationProfile, "")); err != nil {
		t.Fatalf("applying the innovation profile: %v\n%s", err, stderr)
	}
	t.Cleanup(func() {
		kubectl(t, "delete", "namespace", "path-golden", "path-lab", "--ignore-not-found", "--wait=false")
		kubectl(t, "delete", "tollgateprofile", "innovation", "--ignore-not-found")
	})
	eventually(t, 30*time.Second, func() error {
		var p v1alpha1.TollgateProfile
		if err := env.client.Get(ctx, client.ObjectKey{Name: "innovation"}, &p); err != nil {
			return err
		}
		if len(p.Status.Conditions) == 0 || p.Status.Conditions[0].Status != "True" {
			return fmt.Errorf("innovation not in force: %+v", p.Status)
		}
		return nil
	})

	t.Run("only the platform team moves a namespace off the golden path", func(t *testing.T) {
		if _, _, err := asUser(t, "alice", profileNamespace("path-golden", "")); err != nil {
			t.Fatalf("a namespace on the default path: %v", err)
		}
		// The loader may still be catching up with the profile: the
		// denial must name the move, not "names no profile". Applied
		// from a file, as docs/profiles.md shows it.
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "path-lab.yaml"), []byte(profileNamespace("path-lab", "innovation")), 0o600); err != nil {
			t.Fatal(err)
		}
		var out string
		eventually(t, 30*time.Second, func() error {
			var err error
			out, err = console(t, dir, "apply", "-f", "path-lab.yaml", "--as", "alice", "--as-group", "system:masters")
			if err == nil {
				return fmt.Errorf("alice created a namespace on the innovation path")
			}
			if !strings.Contains(out, `moving from profile "golden" to "innovation" is for the platform team`) {
				return fmt.Errorf("denied for another reason: %s", out)
			}
			return nil
		})
		if !strings.Contains(out, "alice is not among them") {
			t.Errorf("the denial does not name the user: %s", out)
		}
		t.Logf("alice creating path-lab on the innovation path:\n%s", out)
		docexample.Check(t, root, "e2e-profiles-move-denied", out)
		if _, stderr, err := asUser(t, "alice", profileNamespace("path-golden", "innovation")); err == nil || !strings.Contains(stderr, "namespace-profile") {
			t.Errorf("alice moved path-golden: %v %s", err, stderr)
		}
		// Status and finalize writes carry the Namespace's labels too
		// (the API server keeps them): they are judged like an UPDATE.
		_, stderr, err := env.cluster.Kubectl(ctx, "patch", "namespace", "path-golden", "--subresource=status", "--type=merge",
			"-p", `{"metadata":{"labels":{"tollgate.dev/path":"innovation"}}}`, "--as", "alice", "--as-group", "system:masters")
		if err == nil || !strings.Contains(stderr, "namespace-profile") {
			t.Errorf("alice's status write: %v %s", err, stderr)
		}
		cfg := rest.CopyConfig(env.cluster.Config())
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "alice", Groups: []string{"system:masters"}}
		asAlice, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := asAlice.CoreV1().Namespaces().Get(ctx, "path-golden", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Labels["tollgate.dev/path"] = "innovation"
		if _, err := asAlice.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "namespace-profile") {
			t.Errorf("alice's finalize write: %v", err)
		}
		if got := kubectl(t, "get", "namespace", "path-golden", "-o", `jsonpath={.metadata.labels.tollgate\.dev/path}`); got != "" {
			t.Errorf("a status or finalize write moved path-golden to %q", got)
		}
		if _, stderr, err := asUser(t, "platform-admin", profileNamespace("path-lab", "innovation")); err != nil {
			t.Fatalf("the platform admin could not create path-lab: %v\n%s", err, stderr)
		}
		if _, stderr, err := asUser(t, "alice", profileNamespace("path-lab", "wild-west")); err == nil || !strings.Contains(stderr, `names no profile (profiles: golden, innovation)`) {
			t.Errorf("a label naming no profile: %v %s", err, stderr)
		}
		// Every move, denied or allowed, is in the decision log with
		// who, from and to.
		eventually(t, 10*time.Second, func() error {
			log := env.decision.String()
			for line := range strings.Lines(log) {
				if strings.Contains(line, `"user":"platform-admin"}`) && strings.Contains(line, `"namespace":"path-lab"`) {
					t.Logf("decision log:\n%s", line)
				}
			}
			for _, want := range []string{
				`"details":{"from":"golden","namespace":"path-lab","to":"innovation","user":"platform-admin"}`,
				`"details":{"from":"golden","namespace":"path-golden","to":"innovation","user":"alice"}`,
			} {
				if !strings.Contains(log, want) {
					return fmt.Errorf("decision log lacks %s", want)
				}
			}
			return nil
		})
	})

	t.Run("the same Deployment: denied on the golden path, warned on the innovation path", func(t *testing.T) {
		// agent.yaml in a directory per namespace, applied from there as
		// docs/profiles.md shows it.
		agent := func(ns string) string {
			dir := filepath.Join(t.TempDir(), ns)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(fmt.Sprintf(privilegedDeployment, "agent", ns)), 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}
		out, err := console(t, agent("path-golden"), "apply", "--dry-run=server", "-f", "agent.yaml")
		if err == nil || !strings.Contains(out, "pss-baseline-privileged") {
			t.Fatalf("golden: %v %s", err, out)
		}
		t.Logf("on the golden path:\n%s", out)
		docexample.Check(t, root, "e2e-profiles-golden", out)
		out, err = console(t, agent("path-lab"), "apply", "--dry-run=server", "-f", "agent.yaml")
		if err != nil {
			t.Fatalf("innovation denied: %v %s", err, out)
		}
		for _, want := range []string{"not on the golden path: no platform backups or monitoring", "pss-baseline-privileged"} {
			if !strings.Contains(out, want) {
				t.Errorf("innovation warnings lack %q:\n%s", want, out)
			}
		}
		if i, j := strings.Index(out, "not on the golden path"), strings.Index(out, "pss-baseline-privileged"); i > j {
			t.Errorf("the notice is not first:\n%s", out)
		}
		t.Logf("on the innovation path:\n%s", out)
		docexample.Check(t, root, "e2e-profiles-innovation", out)
	})

	t.Run("a profile naming a policy that does not exist keeps its last good version", func(t *testing.T) {
		if _, stderr, err := apply(t, fmt.Sprintf(innovationProfile, "    pss-baseline-privilegd: enforce\n")); err != nil {
			t.Fatalf("%v %s", err, stderr)
		}
		eventually(t, 30*time.Second, func() error {
			var p v1alpha1.TollgateProfile
			if err := env.client.Get(ctx, client.ObjectKey{Name: "innovation"}, &p); err != nil {
				return err
			}
			c := p.Status.Conditions
			if len(c) == 0 || c[0].Status != "False" || c[0].ObservedGeneration != p.Generation {
				return fmt.Errorf("not refused yet: %+v", p.Status)
			}
			want := "profile innovation.policies.pss-baseline-privilegd: no policy has this id"
			if !strings.Contains(c[0].Message, want) || !strings.Contains(c[0].Message, "stays in force") {
				return fmt.Errorf("message %q lacks %q", c[0].Message, want)
			}
			return nil
		})
		// Still the last good version: warned, not denied.
		if _, stderr, err := apply(t, fmt.Sprintf(privilegedDeployment, "agent", "path-lab"), "--dry-run=server"); err != nil {
			t.Errorf("the refused version is in force: %v %s", err, stderr)
		}
	})
}

package webhook

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
	"github.com/tollgate-dev/tollgate/policies/imagesig"
	core "github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/test/registry"
)

// imageReviewFixture is the review fixture with an image policy trusting
// one key for HOST/team/** on a real registry.
func imageReviewFixture(t *testing.T, mode, unmatched string) (*reviewFixture, *registry.Registry, string, string) {
	t.Helper()
	ctx := context.Background()
	reg, err := registry.StartSigned(ctx, "team/app", "team/unsigned")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Stop() })
	p, err := imagesig.Compile(ctx, v1alpha1.ImagePolicySpec{Mode: mode, Unmatched: unmatched, Images: []v1alpha1.ImageRule{{
		Glob: reg.Host() + "/team/**", Authorities: []v1alpha1.Authority{{Name: "release", Key: &v1alpha1.KeyAuthority{Data: string(reg.KeyPEM)}}},
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, nil)
	st := *f.reviewer.opts.State.Load()
	st.Images = []core.ImagePolicy{{Name: "corp", Policy: p}}
	f.reviewer.opts.State.Store(&st)
	f.reviewer.opts.Core = core.New(core.Options{Now: f.reviewer.opts.Now, Images: &core.ImageGate{Verifier: imagesig.NewVerifier(imagesig.Options{Insecure: true, Timeout: 2 * time.Second}), Parallel: 2, Metrics: f.metrics}})
	return f, reg.Registry, reg.Host() + "/team/app:1.0", reg.Image.DigestStr()
}

func podWith(images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q,
		 "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}},
		 "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"memory":"256Mi"}}}`, i, img))
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"shop","labels":{"team":"payments","owner":"alice","cost-center":"CC-1234"}},
	 "spec":{"securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[` + strings.Join(cs, ",") + `]}}`
}

func TestImageGateInReview(t *testing.T) {
	f, reg, signed, digest := imageReviewFixture(t, "Enforce", "deny")
	host := reg.Host()

	// The mutating webhook pins the verified image, and only that one.
	_, resp := decodeResponse(t, post(f.mutate, review(t, "CREATE", "Pod", "shop", "p", podWith(signed, host+"/team/unsigned:1.0"), ""), "application/json"))
	patch := string(resp.Patch)
	if !strings.Contains(patch, `{"op":"replace","path":"/spec/containers/0/image","value":"`+signed+"@"+digest+`"}`) {
		t.Errorf("the signed image is not pinned: %s", patch)
	}
	if strings.Contains(patch, "/spec/containers/1/image") {
		t.Errorf("the unsigned image was pinned: %s", patch)
	}

	cases := []struct {
		name, pod string
		allowed   bool
		want      string
	}{
		{"pinned and verified", podWith(signed + "@" + digest), true, ""},
		// The mutating webhook did not run (its failurePolicy is Ignore):
		// the tag is looked up to say why, and denied.
		{"a matched image without a digest", podWith(signed), false,
			"[image-policy/corp] spec.containers[0].image: " + signed + " is not pinned to its digest; it verifies as " + signed + "@" + digest},
		{"unsigned", podWith(host + "/team/unsigned:1.0"), false, "release: no signatures found"},
		{"unmatched, denied by the policy", podWith("docker.io/library/nginx:1.27"), false, "no rule of the image policy matches docker.io/library/nginx"},
		{"a malformed reference", podWith("UPPER/Case::bad"), false, "could not be verified: image \"UPPER/Case::bad\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := decodeResponse(t, post(f.validate, review(t, "CREATE", "Pod", "shop", "p", tc.pod, ""), "application/json"))
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %+v", resp.Allowed, tc.allowed, resp.Result)
			}
			if tc.want != "" && !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("message does not say %q:\n%s", tc.want, resp.Result.Message)
			}
		})
	}

	// The verifications are counted by policy and result: the mutating
	// webhook's verification, then the validating webhook's cached verdict.
	for _, result := range []string{"verified", "cached", "failed", "unmatched", "error"} {
		if testutil.ToFloat64(f.metrics.images.WithLabelValues("corp", result)) == 0 {
			t.Errorf("no %s verification counted", result)
		}
	}

	// An UPDATE judges the images it brings, not those already admitted:
	// a pod whose unsigned image predates the policy can still be relabelled.
	old := podWith(host + "/team/unsigned:1.0")
	relabelled := strings.Replace(old, `"team":"payments"`, `"team":"payments","tier":"web"`, 1)
	_, resp = decodeResponse(t, post(f.validate, review(t, "UPDATE", "Pod", "shop", "p", relabelled, old), "application/json"))
	if strings.Contains(fmt.Sprint(resp.Result), "image-policy") {
		t.Errorf("an unchanged image was judged again on UPDATE: %+v", resp.Result)
	}
	changed := podWith(host + "/team/app:2.0")
	_, resp = decodeResponse(t, post(f.validate, review(t, "UPDATE", "Pod", "shop", "p", changed, old), "application/json"))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "image-policy/corp") {
		t.Errorf("a changed image was not judged on UPDATE: %+v", resp.Result)
	}
}

func TestImageGateWarnMode(t *testing.T) {
	f, reg, _, _ := imageReviewFixture(t, "Warn", "warn")
	_, resp := decodeResponse(t, post(f.validate, review(t, "CREATE", "Pod", "shop", "p",
		podWith(reg.Host()+"/team/unsigned:1.0", "ghcr.io/corp/other:1"), ""), "application/json"))
	if !resp.Allowed {
		t.Fatalf("Warn mode denied: %+v", resp.Result)
	}
	got := strings.Join(resp.Warnings, "\n")
	for _, want := range []string{"[image-policy/corp] spec.containers[0].image:", "[image-policy/corp] spec.containers[1].image: no rule of the image policy matches"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if !strings.Contains(f.log.String(), `"policy":"image-policy/corp"`) {
		t.Errorf("the decision log does not record the image findings:\n%s", f.log)
	}
}

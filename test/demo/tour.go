package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// step is one narrated command: what the newcomer should see, the kubectl
// arguments, and a check that the output is what the narration promised.
type step struct {
	say     string
	args    []string
	wantErr bool
	check   func(out string) error
	// retry re-runs the command until check passes (controllers take a
	// moment to create pods).
	retry time.Duration
	// run, when set, replaces kubectl: show is the command line printed.
	run  func(ctx context.Context) (string, error)
	show string
}

func contains(subs ...string) func(string) error {
	return func(out string) error {
		for _, s := range subs {
			if !strings.Contains(out, s) {
				return fmt.Errorf("output lacks %q", s)
			}
		}
		return nil
	}
}

func tour(ctx context.Context, env *localEnv, w io.Writer) int {
	m := func(name string) string { return "test/demo/manifests/" + name }
	im, fo, sc := env.images, env.finops, env.scanning
	gen := func(path string) string { return rel(env.root, path) }
	steps := []step{{
		say:   "A platform team creates a team namespace carrying the ownership labels.",
		args:  []string{"apply", "-f", m("namespace.yaml")},
		check: contains("namespace/shop created"),
	}, {
		say:   "A developer applies a bare Deployment: no labels, no security context, no resources.",
		args:  []string{"apply", "-f", m("web.yaml")},
		check: contains("deployment.apps/web created"),
	}, {
		say: "The mutating webhook copied team, owner, cost-center and environment from the namespace, hardened the\n" +
			"pod and container security context, defaulted resources, and recorded what it injected:",
		args: []string{"get", "deployment", "web", "-n", "shop", "-o", "go-template=" +
			`labels:           {{range $k, $v := .metadata.labels}}{{$k}}={{$v}} {{end}}` + "\n" +
			`pod template:     {{range $k, $v := .spec.template.metadata.labels}}{{$k}}={{$v}} {{end}}` + "\n" +
			`pod security:     {{.spec.template.spec.securityContext}}` + "\n" +
			`container:        {{(index .spec.template.spec.containers 0).securityContext}}` + "\n" +
			`resources:        {{(index .spec.template.spec.containers 0).resources}}` + "\n" +
			`injected:         {{index .metadata.annotations "tollgate.dev/injected"}}` + "\n"},
		check: contains("cost-center=CC-1234", "team=payments", "runAsNonRoot:true", "seccompProfile:map[type:RuntimeDefault]",
			"allowPrivilegeEscalation:false", "drop:[ALL]", "requests:map[cpu:100m memory:128Mi]"),
	}, {
		say:   "The Deployment controller's ReplicaSet and Pods went through admission too, and carry the labels:",
		args:  []string{"get", "pods", "-n", "shop", "-l", "app=web", "-L", "team,cost-center"},
		check: func(out string) error { return countLines(out, "CC-1234", 2) },
		retry: 90 * time.Second,
	}, {
		say:     "A privileged Deployment on the host network is denied, with every violation, its policy and its field:",
		args:    []string{"apply", "-f", m("privileged.yaml")},
		wantErr: true,
		check: contains(`admission webhook "validate.tollgate.dev" denied the request`, "[pss-baseline-privileged]",
			"[pss-baseline-host-namespaces] spec.template.spec.hostNetwork", "[pss-baseline-host-path]"),
	}, {
		say:   "A Warn-mode policy (images-no-latest, set to warn in test/demo/config.yaml) admits with a warning kubectl prints:",
		args:  []string{"apply", "-f", m("latest.yaml")},
		check: contains("Warning: tollgate: [images-no-latest]", "deployment.apps/worker created"),
	}, {
		say: "Gatekeeper policies run unchanged. A team's ConstraintTemplate and Constraint from its repository\n" +
			"(Services need an alert-channel label) are applied as they are; Tollgate creates the constraint's CRD\n" +
			"as Gatekeeper would:",
		args:  []string{"apply", "-f", m("gatekeeper/template.yaml")},
		check: contains("constrainttemplate.templates.gatekeeper.sh/teamrequiredlabels created"),
	}, {
		say:   "",
		args:  []string{"apply", "-f", m("gatekeeper/constraint.yaml")},
		check: contains("teamrequiredlabels.constraints.gatekeeper.sh/services-need-alert-channel created"),
		retry: 30 * time.Second, // until the constraint's CRD is established
	}, {
		say:     "Tollgate loads it within a second or two; a server-side dry run of a Service without the label gets the verdict:",
		args:    []string{"apply", "--dry-run=server", "-f", m("service.yaml")},
		wantErr: true,
		check:   contains(`[TeamRequiredLabels/services-need-alert-channel]`),
		retry:   30 * time.Second, // until the constraint is loaded
	}, {
		say:     "And the real apply is denied at admission, named by the constraint's kind and name:",
		args:    []string{"apply", "-f", m("service.yaml")},
		wantErr: true,
		check:   contains(`denied the request`, `[TeamRequiredLabels/services-need-alert-channel] Service web must carry the labels {"alert-channel"}`),
	}, {
		say:  "The same policy, the same message, in a pull request, before anything reaches the cluster:",
		show: "tollgate check --policy test/demo/manifests/gatekeeper test/demo/manifests/namespace.yaml test/demo/manifests/service.yaml",
		run: func(ctx context.Context) (string, error) {
			return tollgateRun(ctx, env, true, "check", "--policy", m("gatekeeper"), m("namespace.yaml"), m("service.yaml"))
		},
		check: contains(`ENFORCE [medium] TeamRequiredLabels/services-need-alert-channel: Service web must carry the labels {"alert-channel"}`, "FAILED"),
	}, {
		say:   "The platform trusts only images signed by its release key (cosign): a TollgateImagePolicy for the team registry.",
		args:  []string{"apply", "-f", gen(im.policy)},
		check: contains("tollgateimagepolicy.tollgate.dev/release-signed created"),
	}, {
		say:   "Tollgate loads it within a second and says so in its status:",
		args:  []string{"wait", "--for=condition=Ready", "--timeout=30s", "tollgateimagepolicy/release-signed"},
		check: contains("condition met"),
	}, {
		say:   "A Deployment of a signed image is admitted; Tollgate resolved its tag once, verified that digest, and pinned it:",
		args:  []string{"apply", "-f", gen(im.signedDeploy)},
		check: contains("deployment.apps/api created"),
	}, {
		say:   "",
		args:  []string{"get", "deployment", "api", "-n", "shop", "-o", "jsonpath=image: {.spec.template.spec.containers[0].image}{\"\\n\"}"},
		check: contains("image: " + im.signed + "@" + im.digest),
	}, {
		say:     "An unsigned image from the same registry is denied, with the reason:",
		args:    []string{"apply", "-f", gen(im.unsignedDeploy)},
		wantErr: true,
		check:   contains("[image-policy/release-signed] spec.template.spec.containers[0].image", "release-key: no signatures found"),
	}, {
		say:     "--dry-run=server gets the same verdict (and Tollgate records it as a dry run, with no side effects):",
		args:    []string{"apply", "--dry-run=server", "-f", m("privileged.yaml")},
		wantErr: true,
		check:   contains("[pss-baseline-privileged]", "denied the request"),
	}, {
		say:     "So does a server-side apply, as Argo CD and Flux send it:",
		args:    []string{"apply", "--server-side", "-f", m("privileged.yaml")},
		wantErr: true,
		check:   contains("[pss-baseline-privileged]", "denied the request"),
	}, {
		say: "Security scanning. Tollgate scans images with Trivy (its own process, v0.74): the same scan in a terminal\n" +
			"or a pull request, against the vulnerability database (here one built from planted advisories):",
		show: "tollgate scan image --db-repository " + sc.dbRef + " --insecure-registry " + sc.image,
		run: func(ctx context.Context) (string, error) {
			return tollgateRun(ctx, env, true, "scan", "image", "--trivy", sc.trivy, "--db-repository", sc.dbRef,
				"--cache-dir", filepath.Join(env.dir, "trivy-cli-cache"), "--insecure-registry", sc.image)
		},
		check: contains("CRITICAL  CVE-2026-10101", "busybox", "FAIL: 1 at or above CRITICAL"),
	}, {
		say:   "In the cluster, the leader scans every image its pods run, once per digest. The ledger team runs it in production:",
		args:  []string{"apply", "-f", gen(sc.ledger)},
		check: contains("namespace/ledger created", "deployment.apps/api created"),
	}, {
		say: "Admission never waits for a scan: the image was queued at once, and its result is kept in the cluster as an\n" +
			"ImageScan (one per image, keyed by digest; an SBOM beside it). The ghcr.io images of the tour cannot be\n" +
			"fetched offline: their scans fail, and say why.",
		args: []string{"get", "imagescans", "--sort-by=.spec.image", "-o", "custom-columns=IMAGE:.spec.image,PHASE:.status.phase,CRITICAL:.status.counts.CRITICAL,FIXABLE:.status.fixable.CRITICAL"},
		check: func(out string) error {
			for line := range strings.Lines(out) {
				if f := strings.Fields(line); len(f) == 4 && f[0] == sc.image {
					if f[1] != "Scanned" || f[2] != "1" || f[3] != "1" {
						return fmt.Errorf("the ledger image is %s with %s CRITICAL (%s fixable), want Scanned with 1 (1)", f[1], f[2], f[3])
					}
					return nil
				}
			}
			return fmt.Errorf("no ImageScan of %s", sc.image)
		},
		retry: 90 * time.Second,
	}, {
		say: "Policies see the result in input.imageScans. The library's images-vulnerabilities (warn by default) flags a\n" +
			"fixable CRITICAL in a tier=production namespace, with the CVE and the fixed version, on the next change:",
		args:  []string{"rollout", "restart", "deployment/api", "-n", "ledger"},
		check: contains("Warning: tollgate: [images-vulnerabilities]", "CVE-2026-10101 in busybox", "fixed in 1.36.1-r30", "restarted"),
	}, {
		say: "FinOps. The ml team's namespace names the channel its budget alerts go to; the webhook URL sits in a\n" +
			"Secret in Tollgate's namespace (the local receiver here stands in for Slack):",
		args:  []string{"apply", "-f", gen(fo.namespace)},
		check: contains("namespace/ml created", "secret/budget-webhooks created"),
	}, {
		say:   "A training Deployment: 4 replicas of 8 GPUs each.",
		args:  []string{"apply", "-f", gen(fo.trainer)},
		check: contains("deployment.apps/trainer created"),
	}, {
		say:  "There is no kubelet here, so we mark its pods Running as a kubelet would (only running pods are charged):",
		show: "kubectl patch -n ml pod/<each trainer pod> --subresource=status --type=merge -p '{\"status\":{\"phase\":\"Running\"}}'",
		run: func(ctx context.Context) (string, error) {
			return markRunning(ctx, env, "ml", "app=trainer", 4)
		},
		check: func(out string) error { return countLines(out, "patched", 4) },
	}, {
		say:   "A monthly Budget of $0.05 for the namespace, in deny mode (tiny, so the demo crosses thresholds in seconds):",
		args:  []string{"apply", "-f", gen(fo.budget)},
		check: contains("budget.tollgate.dev/monthly created"),
	}, {
		say: "The scanner (on the leader; every 2 s here, 5 min by default) adds spend to the Budget's status at\n" +
			"max(request, usage) × OpenCost's prices; kubectl get budgets reads like a dashboard:",
		args:  []string{"get", "budgets", "-A"},
		check: contains("namespace ml", "50%,80%,100%"),
		retry: 60 * time.Second,
	}, {
		say:  "Each threshold was alerted once, to the ml channel. The receiver got:",
		show: "(the local Slack receiver's messages)",
		run: func(context.Context) (string, error) {
			return strings.Join(fo.receiver.texts(), "\n"), nil
		},
		check: func(out string) error {
			if err := countLines(out, "monthly budget", 3); err != nil {
				return err
			}
			return contains("namespace ml", "crossed 50 %", "crossed 80 %", "crossed 100 %")(out)
		},
	}, {
		say:  "tollgate cost tallies the cluster's spend by namespace, team, cost-center or label, beside the budgets:",
		show: "tollgate cost --by namespace",
		run: func(ctx context.Context) (string, error) {
			return tollgateCost(ctx, env)
		},
		check: contains("ml", "TOTAL (USD)", "ml/monthly"),
	}, {
		say:     "Another training job would take the forecast further over the budget: denied, with the numbers.",
		args:    []string{"apply", "-f", gen(fo.bigger)},
		wantErr: true,
		check:   contains("[budget/ml/monthly] this adds $", "namespace ml is forecast at $", "of its $0.05 monthly budget"),
	}, {
		say: "Golden paths. Each namespace is on a profile (test/demo/config.yaml: golden by default); a new team\n" +
			"namespace on the golden path comes with the quota, limits and default-deny network policy its profile generates:",
		args:  []string{"apply", "-f", m("paths/checkout.yaml")},
		check: contains("namespace/checkout created"),
	}, {
		say:   "",
		args:  []string{"get", "resourcequota,limitrange,networkpolicy", "-n", "checkout", "-L", "tollgate.dev/profile"},
		check: contains("resourcequota/tollgate-defaults", "limitrange/tollgate-defaults", "networkpolicy.networking.k8s.io/tollgate-defaults", "golden"),
		retry: 60 * time.Second,
	}, {
		say: "Cloud resources are governed too: a database claim above the golden path's size cap is denied with its\n" +
			"monthly price (an approved TollgateException, with approver and ticket, would be the approval):",
		args:    []string{"apply", "-f", m("paths/orders-db.yaml")},
		wantErr: true,
		check:   contains("[cloud-instance-size]", `instance class "db.m5.4xlarge", USD 998.64 a month is above the "db.m5.large" cap of profile "golden"`),
	}, {
		say: "Compliance. The server audits everything already running in the background (every 10 minutes, and when\n" +
			"policies change) into openreports.io Reports; tollgate audit runs one now:",
		show: "tollgate audit --write-reports --config test/demo/config.yaml",
		run: func(ctx context.Context) (string, error) {
			return tollgateRun(ctx, env, true, "audit", "--kubeconfig", env.cluster.KubeconfigPath(), "--write-reports",
				"--config", filepath.Join(env.root, "test", "demo", "config.yaml"))
		},
		check: contains("Audited", "images-no-latest", "Deployment shop/worker"),
	}, {
		say:   "",
		args:  []string{"get", "reports", "-A"},
		check: contains("shop", "tollgate"),
	}, {
		say:  "A report for auditors: per framework, the controls passed, failed and manual, the failing resources,\nthe exceptions in force and the admission denials from the decision log:",
		show: "tollgate report --decision-log .tollgate/demo/decisions.log --output .tollgate/demo/compliance-report.html",
		run: func(ctx context.Context) (string, error) {
			return tollgateRun(ctx, env, false, "report", "--kubeconfig", env.cluster.KubeconfigPath(), "--cluster-name", "demo",
				"--decision-log", gen(filepath.Join(env.dir, "decisions.log")), "--output", gen(filepath.Join(env.dir, "compliance-report.html")))
		},
		check: contains("compliance-report.html", "cis", "pss", "passed", "from the authenticated API server", ": verified"),
	}, {
		say: "Only the API server may ask for a review: an AdmissionReview POSTed straight to the webhook, without\n" +
			"the API server's client certificate, is refused before it is read, and leaves no trace in the decision log:",
		show: fmt.Sprintf("curl -k -X POST -H 'Content-Type: application/json' -d @forged-review.json https://127.0.0.1:%d/validate", env.port),
		run: func(ctx context.Context) (string, error) {
			return forgedReview(ctx, env)
		},
		check: contains("HTTP 401", "a client certificate signed by the configured client CA is required", "no decision logged for forged-1"),
	}, {
		say:   "Re-applying the bare Deployment changes nothing: the mutations are idempotent (generation stays 1).",
		args:  []string{"apply", "-f", m("web.yaml")},
		check: contains("deployment.apps/web unchanged"),
	}, {
		say:   "",
		args:  []string{"get", "deployment", "web", "-n", "shop", "-o", "jsonpath=generation: {.metadata.generation}{\"\\n\"}"},
		check: contains("generation: 1"),
	}}

	passed := 0
	for i, s := range steps {
		if s.say != "" {
			fmt.Fprintf(w, "── %d. %s\n", i+1, s.say)
		}
		if s.run != nil {
			fmt.Fprintf(w, "$ %s\n", s.show)
		} else {
			fmt.Fprintf(w, "$ kubectl %s\n", quoteArgs(s.args))
		}
		out, err := runStep(ctx, env, s)
		fmt.Fprintln(w, indent(out))
		switch {
		case err != nil:
			fmt.Fprintf(w, "✗ %v\n\n", err)
		default:
			passed++
			fmt.Fprintln(w)
		}
	}
	// Observability: the server's own counters.
	fmt.Fprintf(w, "── Prometheus metrics on https://127.0.0.1:%d/metrics (requests by webhook, kind and decision; the\n"+
		"   scraper's token is checked with the API server, and it may get /metrics):\n", env.port)
	if lines, err := metrics(ctx, env); err != nil {
		fmt.Fprintf(w, "✗ %v\n", err)
	} else {
		fmt.Fprintln(w, indent(lines))
		passed++
	}
	total := len(steps) + 1
	fmt.Fprintf(w, "\n%d of %d steps behaved as narrated. The decision log is in .tollgate/demo/decisions.log.\n", passed, total)
	fmt.Fprintf(w, "The compliance report is in %s (open it in a browser; it prints as a PDF).\n", rel(env.root, filepath.Join(env.dir, "compliance-report.html")))
	fmt.Fprintln(w, "To browse budgets, reports, exceptions and images in the console, keep a cluster up with `make dev`, then run")
	fmt.Fprintln(w, "  bin/tollgate ui --kubeconfig .tollgate/dev/kubeconfig")
	if passed != total {
		return 1
	}
	return 0
}

func runStep(ctx context.Context, env *localEnv, s step) (string, error) {
	deadline := time.Now().Add(s.retry)
	for {
		var stdout, stderr string
		var err error
		if s.run != nil {
			stdout, err = s.run(ctx)
		} else {
			stdout, stderr, err = env.cluster.Kubectl(ctx, s.args...)
		}
		out := strings.TrimRight(stdout+stderr, "\n")
		var problem error
		switch {
		case s.wantErr && err == nil:
			problem = fmt.Errorf("the command succeeded; the narration said it would be denied")
		case !s.wantErr && err != nil:
			problem = fmt.Errorf("the command failed")
		default:
			problem = s.check(out)
		}
		if problem == nil || time.Now().After(deadline) {
			return out, problem
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// metrics scrapes /metrics as Prometheus would: with the token of a
// ServiceAccount allowed to get /metrics.
func metrics(ctx context.Context, env *localEnv) (string, error) {
	for _, args := range [][]string{
		{"create", "serviceaccount", "demo-scraper", "-n", "default"},
		{"create", "clusterrole", "demo-metrics-reader", "--verb=get", "--non-resource-url=/metrics"},
		{"create", "clusterrolebinding", "demo-metrics-reader", "--clusterrole=demo-metrics-reader", "--serviceaccount=default:demo-scraper"},
	} {
		if _, stderr, err := env.cluster.Kubectl(ctx, args...); err != nil && !strings.Contains(stderr, "AlreadyExists") {
			return "", err
		}
	}
	token, _, err := env.cluster.Kubectl(ctx, "create", "token", "demo-scraper", "-n", "default")
	if err != nil {
		return "", err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // our own server
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/metrics", env.port), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(token))
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return "", fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var keep []string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "tollgate_admission_requests_total{") && strings.Contains(l, `dry_run="false"`) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return "", fmt.Errorf("no tollgate_admission_requests_total series")
	}
	return strings.Join(keep, "\n"), nil
}

func countLines(out, sub string, n int) error {
	if got := strings.Count(out, sub); got != n {
		return fmt.Errorf("%d lines with %s, want %d", got, sub, n)
	}
	return nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " {}$\"'\n") {
			a = "'" + strings.ReplaceAll(a, "\n", `\n`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

func indent(s string) string {
	if s == "" {
		return "  (no output)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// forgedReview POSTs an AdmissionReview to /validate without a client
// certificate, as anyone who reaches the port could.
func forgedReview(ctx context.Context, env *localEnv) (string, error) {
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"forged-1",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
		`"namespace":"shop","name":"forged","operation":"CREATE","userInfo":{"username":"mallory"},` +
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"forged","namespace":"shop"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // our own server
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("https://127.0.0.1:%d/validate", env.port), strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	out := fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(text)))
	log, err := os.ReadFile(filepath.Join(env.dir, "decisions.log"))
	if err != nil {
		return out, err
	}
	if strings.Contains(string(log), `"uid":"forged-1"`) {
		return out + "\nthe forged review was logged as a decision", nil
	}
	return out + "\n(no decision logged for forged-1)", nil
}

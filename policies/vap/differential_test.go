package vap

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/warning"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/tollgate-dev/tollgate/policies"
)

// The differential test runs the same policies, params, namespaces and
// requests through the Evaluator and through the API server's
// ValidatingAdmissionPolicy plugin itself, wired to a fake clientset the
// way kube-apiserver wires it to the real one (informers, policy source,
// its own unexported compiler, the param informers it starts). They must
// agree on whether the request is denied, on the denial's reason, and on
// every warning.

type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) AddWarning(_, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// plugin starts the API server's validating admission policy plugin over
// a fake cluster holding objs.
func plugin(t *testing.T, objs []runtime.Object) *validating.Plugin {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })

	p, err := validating.NewPlugin(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetExternalKubeInformerFactory(factory)
	p.SetExternalKubeClientSet(client)
	p.SetRESTMapper(mapper)
	p.SetDynamicClient(dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()))
	p.SetDrainedNotification(stop)
	p.SetAuthorizer(offlineAuthorizer{})
	if err := p.ValidateInitialization(); err != nil {
		t.Fatal(err)
	}
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	if !p.WaitForReady() {
		t.Fatal("plugin not ready")
	}
	return p
}

// typed decodes a JSON-shaped object into its client-go type, as the API
// server holds it.
func typed(t *testing.T, o map[string]any) runtime.Object {
	t.Helper()
	apiVersion, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		t.Fatal(err)
	}
	out, err := clientgoscheme.Scheme.New(gv.WithKind(kind))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(o)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// asMap is what a webhook receives for a typed object: its JSON.
func asMap(t *testing.T, o runtime.Object) map[string]any {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDifferential(t *testing.T) {
	files := []string{"team-label.yaml", "replicas.yaml", "images.yaml", "scale.yaml", "failure.yaml", "context.yaml", "audit.yaml"}
	namespaces := []map[string]any{
		namespace("prod", "env", "prod"), namespace("dev", "env", "dev"), namespace("shop"), namespace("jobs"),
		namespace("platform"), namespace("kube-system", "env", "prod"), namespace("team-a", "owner", "alice"),
	}
	params := raw(t, "params.yaml")

	// The cluster: policies and bindings as the API server stores them
	// (defaulted), params, and namespaces with their automatic label.
	var cluster []runtime.Object
	for _, o := range load(t, files...) {
		switch o.Object["kind"] {
		case kindVAP:
			p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
			if errs := decode(o.Object, p); len(errs) > 0 {
				t.Fatal(errs)
			}
			defaultValidatingPolicy(p)
			cluster = append(cluster, p)
		case kindVAPB:
			b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
			if errs := decode(o.Object, b); len(errs) > 0 {
				t.Fatal(errs)
			}
			defaultMatchResources(b.Spec.MatchResources)
			cluster = append(cluster, b)
		}
	}
	for _, p := range params {
		cluster = append(cluster, typed(t, p))
	}
	for _, n := range namespaces {
		ns, err := toNamespace(n)
		if err != nil {
			t.Fatal(err)
		}
		cluster = append(cluster, ns)
	}
	p := plugin(t, cluster)
	e := compile(t, Options{Params: params, Namespaces: namespaces}, files...)

	resources := map[string]string{"Deployment": "deployments", "DaemonSet": "daemonsets", "ConfigMap": "configmaps", "Pod": "pods", "Secret": "secrets"}
	type request struct {
		name     string
		op       admission.Operation
		obj, old map[string]any
		user     *user.DefaultInfo
	}
	secret := func(typ string, set ...func(map[string]any)) map[string]any {
		s := obj("v1", "Secret", "creds", append([]func(map[string]any){inNamespace("shop")}, set...)...)
		s["type"] = typ
		return s
	}
	alice := &user.DefaultInfo{Name: "alice", Groups: []string{"dev", "system:authenticated"}}
	old := deployment("web", inNamespace("shop"), replicas(5))
	requests := []request{
		{name: "prod, no team", op: admission.Create, obj: deployment("web", inNamespace("prod"))},
		{name: "prod, team", op: admission.Create, obj: deployment("web", inNamespace("prod"), withLabels("team", "a"))},
		{name: "dev, no team", op: admission.Create, obj: deployment("web", inNamespace("dev"))},
		{name: "kube-system", op: admission.Create, obj: deployment("web", inNamespace("kube-system"))},
		{name: "param by name, over", op: admission.Create, obj: deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(7))},
		{name: "param by name, zero", op: admission.Create, obj: deployment("web", inNamespace("shop"), withLabels("tier", "web"), replicas(0))},
		{name: "param by selector", op: admission.Create, obj: deployment("etl", inNamespace("jobs"), withLabels("tier", "batch"), replicas(5))},
		{name: "param missing, Deny", op: admission.Create, obj: deployment("redis", inNamespace("shop"), withLabels("tier", "cache"), replicas(1))},
		{name: "param missing, Allow", op: admission.Create, obj: deployment("mq", inNamespace("shop"), withLabels("tier", "queue"), replicas(50))},
		{name: "foreign image", op: admission.Create, obj: deployment("web", inNamespace("shop"), images("docker.io/nginx:1.27", "quay.io/x:1"))},
		{name: "exempt", op: admission.Create, obj: deployment("web", inNamespace("shop"), annotate("tollgate.dev/exempt", ""), images("docker.io/nginx:1.27"))},
		{name: "scale down", op: admission.Update, obj: deployment("web", inNamespace("shop"), replicas(2)), old: old, user: alice},
		{name: "scale up", op: admission.Update, obj: deployment("web", inNamespace("shop"), replicas(8)), old: old, user: alice},
		{name: "scale down, no user", op: admission.Update, obj: deployment("web", inNamespace("shop"), replicas(2)), old: old},
		{name: "runtime error", op: admission.Create, obj: obj("v1", "ConfigMap", "c", inNamespace("shop"))},
		{name: "bad cost center", op: admission.Create, obj: obj("v1", "ConfigMap", "c", inNamespace("shop"), withLabels("cost-center", "x"))},
		{name: "good cost center", op: admission.Create, obj: obj("v1", "ConfigMap", "c", inNamespace("shop"), withLabels("cost-center", "cc-9"))},
		{name: "pod, owned namespace", op: admission.Create, obj: obj("v1", "Pod", "p", inNamespace("team-a")), user: alice},
		{name: "pod, unowned namespace", op: admission.Create, obj: obj("v1", "Pod", "p", inNamespace("shop")), user: alice},
		{name: "secret, owner", op: admission.Create, obj: secret("Opaque", withLabels("owner", "alice"))},
		{name: "secret, basic-auth", op: admission.Create, obj: secret("kubernetes.io/basic-auth", withLabels("owner", "alice"))},
		{name: "secret, no owner", op: admission.Create, obj: secret("Opaque")},
	}
	for _, r := range requests {
		t.Run(r.name, func(t *testing.T) {
			// The API server's plugin.
			object := typed(t, r.obj)
			gvk := object.GetObjectKind().GroupVersionKind()
			var oldObject runtime.Object
			if r.old != nil {
				oldObject = typed(t, r.old)
			}
			u := r.user
			if u == nil {
				u = &user.DefaultInfo{}
			}
			var options runtime.Object = &metav1.CreateOptions{}
			if r.op == admission.Update {
				options = &metav1.UpdateOptions{}
			}
			attr := admission.NewAttributesRecord(object, oldObject, gvk, metadata(r.obj)["namespace"].(string), metadata(r.obj)["name"].(string),
				gvk.GroupVersion().WithResource(resources[gvk.Kind]), "", r.op, options, false, u)
			serverWarnings := &warnings{}
			err := p.Validate(warning.WithWarningRecorder(context.Background(), serverWarnings), attr, admission.NewObjectInterfacesFromScheme(clientgoscheme.Scheme))
			var serverDenial string
			if err != nil {
				var se *apierrors.StatusError
				if !errors.As(err, &se) {
					t.Fatalf("plugin error %v is not a StatusError", err)
				}
				serverDenial = deniedMessage(err)
			}

			// The Evaluator, on what a webhook would receive.
			in := &policies.Input{
				Kind:      policies.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
				Operation: string(r.op),
				Object:    asMap(t, object),
				Source:    policies.SourceAdmission,
				UserInfo:  &policies.UserInfo{Username: u.Name, Groups: u.Groups},
			}
			if oldObject != nil {
				in.OldObject = asMap(t, oldObject)
			}
			d := e.Evaluate(context.Background(), in)
			if len(d.Errors) > 0 {
				t.Fatalf("Evaluate errors: %v", d.Errors)
			}
			var denials, ours []string
			for _, f := range d.Findings {
				msg := strings.TrimPrefix(f.Message, "could not be evaluated: ")
				binding := strings.TrimSuffix(f.Title[strings.LastIndex(f.Title, "(binding ")+len("(binding "):], ")")
				switch f.Action {
				case policies.ActionEnforce:
					denials = append(denials, msg)
				case policies.ActionWarn:
					ours = append(ours, "Validation failed for ValidatingAdmissionPolicy '"+strings.TrimPrefix(f.Policy, kindVAP+"/")+"' with binding '"+binding+"': "+msg)
				}
			}

			if (serverDenial != "") != d.Denied() {
				t.Fatalf("API server denied: %q; Evaluator denied: %v (%q)", serverDenial, d.Denied(), denials)
			}
			// The plugin reports the first denial of its (unordered) hooks.
			if serverDenial != "" && !slices.Contains(denials, serverDenial) {
				t.Errorf("API server denial %q is not among the Evaluator's %q", serverDenial, denials)
			}
			slices.Sort(serverWarnings.list)
			slices.Sort(ours)
			if diff := cmp.Diff(serverWarnings.list, ours); diff != "" {
				t.Errorf("warnings (-API server +Evaluator):\n%s", diff)
			}
			t.Logf("denial %q, warnings %q", serverDenial, serverWarnings.list)
		})
	}
}

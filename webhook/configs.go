package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	core "github.com/tollgate-dev/tollgate/policies/review"
)

// Names of the webhooks inside the configurations Tollgate generates.
const (
	MutatingWebhookName   = "mutate.tollgate.dev"
	ValidatingWebhookName = "validate.tollgate.dev"
)

// ConfigurationOptions says how the API server reaches Tollgate and what it
// must never send it.
type ConfigurationOptions struct {
	// Name of the MutatingWebhookConfiguration and
	// ValidatingWebhookConfiguration objects.
	Name string
	// URL is the server's base URL (https://127.0.0.1:9443) when the API
	// server reaches it directly; otherwise Service is used.
	URL string
	// Service is the in-cluster Service in front of the replicas.
	Service *admissionregistrationv1.ServiceReference
	// CABundle is the PEM bundle the API server verifies the serving
	// certificate with.
	CABundle []byte
	// OwnNamespace is Tollgate's namespace, never intercepted.
	OwnNamespace string
	// MutateTimeout and ValidateTimeout are the webhooks' timeoutSeconds
	// (default 3 and 5).
	MutateTimeout, ValidateTimeout int32
}

// alwaysExcluded are namespaces no generated configuration intercepts.
var alwaysExcluded = []string{"kube-system"}

// Configurations renders the two webhook configurations with the safety
// defaults: validating fails closed (Fail), mutating fails open (Ignore; the
// validator re-checks the final object), no side effects on dry run,
// Equivalent match policy, reinvocation when another webhook changes the
// object, timeouts of a few seconds, and a namespaceSelector excluding
// kube-system, Tollgate's namespace and the config's exempt namespaces.
// The mutating webhook is not called for a Pod that already holds every
// default (MutateMatchConditions); the validating webhook has no condition
// and judges everything it intercepts.
// The intercepted resources are those the loaded policies judge; webhook
// configurations, leases and access reviews are never among them.
func Configurations(st *core.Set, mapper meta.RESTMapper, opts ConfigurationOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	if opts.Name == "" {
		return nil, nil, errors.New("webhook configurations: Name is required")
	}
	if (opts.URL == "") == (opts.Service == nil) {
		return nil, nil, errors.New("webhook configurations: set exactly one of URL and Service")
	}
	if opts.MutateTimeout == 0 {
		opts.MutateTimeout = 3
	}
	if opts.ValidateTimeout == 0 {
		opts.ValidateTimeout = 5
	}
	mutateKinds, validateKinds := core.Kinds(st)
	mutateRules, err := rules(mapper, mutateKinds, true)
	if err != nil {
		return nil, nil, err
	}
	validateRules, err := rules(mapper, validateKinds, false)
	if err != nil {
		return nil, nil, err
	}

	excluded := slices.Clone(alwaysExcluded)
	if opts.OwnNamespace != "" {
		excluded = append(excluded, opts.OwnNamespace)
	}
	for _, ns := range st.Engine.Config().ExemptNamespaces {
		if !strings.ContainsAny(ns, "*?[") { // a selector cannot express globs; the server skips those
			excluded = append(excluded, ns)
		}
	}
	sort.Strings(excluded)
	excluded = slices.Compact(excluded)
	selector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
	}}}
	clientConfig := func(path string) admissionregistrationv1.WebhookClientConfig {
		cc := admissionregistrationv1.WebhookClientConfig{CABundle: opts.CABundle}
		if opts.URL != "" {
			u := strings.TrimSuffix(opts.URL, "/") + path
			cc.URL = &u
		} else {
			svc := *opts.Service
			svc.Path = &path
			cc.Service = &svc
		}
		return cc
	}
	ignore, fail := admissionregistrationv1.Ignore, admissionregistrationv1.Fail
	equivalent := admissionregistrationv1.Equivalent
	noneOnDryRun := admissionregistrationv1.SideEffectClassNoneOnDryRun
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	labels := map[string]string{"app.kubernetes.io/name": "tollgate", "app.kubernetes.io/managed-by": "tollgate"}

	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: opts.Name, Labels: labels},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    MutatingWebhookName,
			ClientConfig:            clientConfig("/mutate"),
			Rules:                   mutateRules,
			FailurePolicy:           &ignore,
			MatchPolicy:             &equivalent,
			NamespaceSelector:       selector,
			SideEffects:             &noneOnDryRun,
			TimeoutSeconds:          &opts.MutateTimeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &ifNeeded,
			MatchConditions:         MutateMatchConditions(st),
		}},
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: opts.Name, Labels: labels},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    ValidatingWebhookName,
			ClientConfig:            clientConfig("/validate"),
			Rules:                   validateRules,
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			NamespaceSelector:       selector,
			SideEffects:             &noneOnDryRun,
			TimeoutSeconds:          &opts.ValidateTimeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	return mwc, vwc, nil
}

// rules turns kinds into admission rules, one per API group, with the
// subresources the review core judges beside their resource (see
// review.Subresources: kubectl debug, an in-place resize or a scale must not
// bypass the policies and the Budgets); mutated selects the mutating
// webhook's. Kinds the API server does not serve are skipped; never-judged
// kinds are dropped.
func rules(mapper meta.RESTMapper, kinds []schema.GroupKind, mutated bool) ([]admissionregistrationv1.RuleWithOperations, error) {
	byGroup := map[string][]string{}
	for _, gk := range kinds {
		if neverJudged[gk.Group+"/"+gk.Kind] {
			continue
		}
		m, err := mapper.RESTMapping(gk)
		if err != nil {
			if meta.IsNoMatchError(err) {
				continue // not served by this cluster (e.g. Argo Rollouts not installed)
			}
			return nil, fmt.Errorf("mapping %s to a resource: %w", gk, err)
		}
		res := m.Resource.Resource
		if slices.Contains(byGroup[gk.Group], res) {
			continue
		}
		byGroup[gk.Group] = append(byGroup[gk.Group], res)
		byGroup[gk.Group] = append(byGroup[gk.Group], core.JudgedSubresources(gk.Group, res, mutated)...)
	}
	groups := make([]string, 0, len(byGroup))
	for g := range byGroup {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	scope := admissionregistrationv1.AllScopes
	var out []admissionregistrationv1.RuleWithOperations
	for _, g := range groups {
		res := byGroup[g]
		sort.Strings(res)
		out = append(out, admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{g}, APIVersions: []string{"*"}, Resources: res, Scope: &scope},
		})
	}
	return out, nil
}

// ApplyConfigurations creates or updates the two configurations, keeping
// the caBundle already in place when the rendered one has none (the
// certificate rotator owns it).
func ApplyConfigurations(ctx context.Context, c client.Client, mwc *admissionregistrationv1.MutatingWebhookConfiguration, vwc *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	err := applyConfiguration(ctx, c, mwc, &admissionregistrationv1.MutatingWebhookConfiguration{},
		func(cur *admissionregistrationv1.MutatingWebhookConfiguration) bool {
			for i := range mwc.Webhooks {
				if len(mwc.Webhooks[i].ClientConfig.CABundle) == 0 && i < len(cur.Webhooks) {
					mwc.Webhooks[i].ClientConfig.CABundle = cur.Webhooks[i].ClientConfig.CABundle
				}
			}
			if equality.Semantic.DeepEqual(cur.Webhooks, mwc.Webhooks) && equality.Semantic.DeepEqual(cur.Labels, mwc.Labels) {
				return false
			}
			cur.Webhooks, cur.Labels = mwc.Webhooks, mwc.Labels
			return true
		})
	if err != nil {
		return err
	}
	return applyConfiguration(ctx, c, vwc, &admissionregistrationv1.ValidatingWebhookConfiguration{},
		func(cur *admissionregistrationv1.ValidatingWebhookConfiguration) bool {
			for i := range vwc.Webhooks {
				if len(vwc.Webhooks[i].ClientConfig.CABundle) == 0 && i < len(cur.Webhooks) {
					vwc.Webhooks[i].ClientConfig.CABundle = cur.Webhooks[i].ClientConfig.CABundle
				}
			}
			if equality.Semantic.DeepEqual(cur.Webhooks, vwc.Webhooks) && equality.Semantic.DeepEqual(cur.Labels, vwc.Labels) {
				return false
			}
			cur.Webhooks, cur.Labels = vwc.Webhooks, vwc.Labels
			return true
		})
}

// applyConfiguration creates want, or updates the existing object when
// merge (which copies want into it) reports a change.
func applyConfiguration[T client.Object](ctx context.Context, c client.Client, want, cur T, merge func(cur T) bool) error {
	kind := strings.TrimPrefix(fmt.Sprintf("%T", want), "*v1.")
	switch err := c.Get(ctx, client.ObjectKeyFromObject(want), cur); {
	case apierrors.IsNotFound(err):
		if err := c.Create(ctx, want); err != nil {
			return fmt.Errorf("creating %s %s: %w", kind, want.GetName(), err)
		}
	case err != nil:
		return fmt.Errorf("reading %s %s: %w", kind, want.GetName(), err)
	case merge(cur):
		if err := c.Update(ctx, cur); err != nil {
			return fmt.Errorf("updating %s %s: %w", kind, want.GetName(), err)
		}
	}
	return nil
}

package loader

import (
	"context"
	"errors"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/gatekeeper"
	"github.com/tollgate-dev/tollgate/policies/kyverno"
	"github.com/tollgate-dev/tollgate/policies/review"
	"github.com/tollgate-dev/tollgate/policies/vap"
)

// Names of the plugins of other policy formats.
const (
	PluginGatekeeper = "gatekeeper"
	PluginVAP        = "vap"
	PluginKyverno    = "kyverno"
)

// Object is a Kubernetes object read from a file or the cluster; Source
// names it in errors ("deploy/policies.yaml:12").
type Object struct {
	Source string
	Object map[string]any
}

// FormatOf names the policy format an object belongs to: PluginGatekeeper
// for ConstraintTemplates and Constraints, PluginVAP for (Validating and
// Mutating) AdmissionPolicies and their bindings, PluginKyverno for the
// kinds of kyverno.io and policies.kyverno.io, "" for anything else.
func FormatOf(obj map[string]any) string {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, _, _ := strings.Cut(apiVersion, "/")
	switch {
	case group == "templates.gatekeeper.sh" && kind == "ConstraintTemplate", group == "constraints.gatekeeper.sh":
		return PluginGatekeeper
	case group == "admissionregistration.k8s.io" && strings.HasSuffix(kind, "AdmissionPolicy"),
		group == "admissionregistration.k8s.io" && strings.HasSuffix(kind, "AdmissionPolicyBinding"):
		return PluginVAP
	case group == "kyverno.io" || group == "policies.kyverno.io":
		return PluginKyverno
	}
	return ""
}

// FileOptions tune the plugins built from files.
type FileOptions struct {
	// PolicyTimeout bounds one review by one plugin.
	PolicyTimeout time.Duration
	// Mapper maps kinds to resources; nil uses the built-in kinds.
	Mapper meta.RESTMapper
	// ExceptionNamespaces are the namespaces (names or globs) whose Kyverno
	// PolicyExceptions count: the config's exceptions.namespaces, as for
	// Tollgate's own exceptions. None by default, so an exception among
	// the objects is reported as not honoured and waives nothing.
	ExceptionNamespaces []string
}

// FromObjects builds the plugins of the policy formats found among objs,
// as `tollgate check` and `tollgate report --from` judge manifests: every
// Gatekeeper template and constraint, every ValidatingAdmissionPolicy and
// binding, every Kyverno policy, with the Kyverno PolicyExceptions among
// objs honoured in opts.ExceptionNamespaces. The other objects are what
// the policies may read: Gatekeeper's data.inventory, the params and
// Namespaces of ValidatingAdmissionPolicies, the ConfigMaps of Kyverno's
// context entries.
// Errors name each object's source and field; the good policies load. A
// format with nothing among objs gives no plugin (Kyverno PolicyExceptions
// alone give the Kyverno plugin, whose warnings say they excuse nothing).
func FromObjects(ctx context.Context, objs []Object, opts FileOptions) ([]review.Plugin, error) {
	var gk []gatekeeper.Object
	var va []vap.Object
	var ky, kyExceptions []kyverno.Object
	var data, namespaces []map[string]any
	for _, o := range objs {
		switch FormatOf(o.Object) {
		case PluginGatekeeper:
			gk = append(gk, gatekeeper.Object{Source: o.Source, Object: o.Object})
		case PluginVAP:
			va = append(va, vap.Object{Source: o.Source, Object: o.Object})
		case PluginKyverno:
			if o.Object["kind"] == "PolicyException" {
				kyExceptions = append(kyExceptions, kyverno.Object{Source: o.Source, Object: o.Object})
				continue
			}
			ky = append(ky, kyverno.Object{Source: o.Source, Object: o.Object})
		default:
			data = append(data, o.Object)
			if o.Object["kind"] == "Namespace" && o.Object["apiVersion"] == "v1" {
				namespaces = append(namespaces, o.Object)
			}
		}
	}
	var plugins []review.Plugin
	var errs []error
	if len(gk) > 0 {
		e, err := gatekeeper.Compile(ctx, gk, gatekeeper.Options{PolicyTimeout: opts.PolicyTimeout})
		if err != nil {
			errs = append(errs, err)
		}
		for _, obj := range data {
			if err := e.AddData(ctx, obj); err != nil {
				errs = append(errs, err)
			}
		}
		plugins = append(plugins, GatekeeperPlugin(e))
	}
	if len(va) > 0 {
		e, err := vap.Compile(ctx, va, vap.Options{Params: data, Namespaces: namespaces, Mapper: opts.Mapper})
		if err != nil {
			errs = append(errs, err)
		}
		plugins = append(plugins, VAPPlugin(e))
	}
	if len(ky) > 0 || len(kyExceptions) > 0 {
		var cms []map[string]any
		for _, obj := range data {
			if obj["kind"] == "ConfigMap" && obj["apiVersion"] == "v1" {
				cms = append(cms, obj)
			}
		}
		e, err := kyverno.Compile(ctx, ky, kyverno.Options{
			ConfigMaps: cms, Exceptions: kyExceptions, ExceptionNamespaces: opts.ExceptionNamespaces,
		})
		if err != nil {
			errs = append(errs, err)
		}
		plugins = append(plugins, KyvernoPlugin(e))
	}
	return plugins, errors.Join(errs...)
}

// GatekeeperPlugin is the plugin of Gatekeeper constraints: they run on
// every path, admission included (Tollgate is their admission webhook).
func GatekeeperPlugin(e *gatekeeper.Evaluator) review.Plugin {
	return review.Plugin{Name: PluginGatekeeper, Evaluator: e}
}

// VAPPlugin is the plugin of ValidatingAdmissionPolicies: the audit, check
// and report judge them; at admission the API server already enforces
// them, so Tollgate does not judge them a second time.
func VAPPlugin(e *vap.Evaluator) review.Plugin {
	return review.Plugin{Name: PluginVAP, Evaluator: e, SkipSources: []string{policies.SourceAdmission}}
}

// KyvernoPlugin is the plugin of Kyverno policies: their validate rules
// judge and their mutate rules mutate on every path, admission included.
func KyvernoPlugin(e *kyverno.Evaluator) review.Plugin {
	return review.Plugin{Name: PluginKyverno, Evaluator: e}
}

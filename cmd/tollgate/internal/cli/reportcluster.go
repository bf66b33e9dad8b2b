package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tollgate-dev/tollgate/compliance"
	"github.com/tollgate-dev/tollgate/policies"
	"github.com/tollgate-dev/tollgate/policies/api/v1alpha1"
)

// reportPageSize bounds one list call: reports can be large.
const reportPageSize = 100

// maxNotes bounds the notes of one kind (unreadable reports, exceptions
// not honoured) listed one by one.
const maxNotes = 20

// reportResource is a report kind to read.
type reportResource struct {
	gvr  schema.GroupVersionResource
	kind string
}

// The report APIs, and the kinds of each.
var reportAPIs = []struct {
	group, version string
	kinds          []reportResource
}{
	{compliance.OpenReportsGroup, compliance.OpenReportsVersion, []reportResource{
		{schema.GroupVersionResource{Group: compliance.OpenReportsGroup, Version: compliance.OpenReportsVersion, Resource: "reports"}, "Report"},
		{schema.GroupVersionResource{Group: compliance.OpenReportsGroup, Version: compliance.OpenReportsVersion, Resource: "clusterreports"}, "ClusterReport"},
	}},
	{compliance.WGPolicyGroup, compliance.WGPolicyVersion, []reportResource{
		{schema.GroupVersionResource{Group: compliance.WGPolicyGroup, Version: compliance.WGPolicyVersion, Resource: "policyreports"}, "PolicyReport"},
		{schema.GroupVersionResource{Group: compliance.WGPolicyGroup, Version: compliance.WGPolicyVersion, Resource: "clusterpolicyreports"}, "ClusterPolicyReport"},
	}},
}

var exceptionsGVR = v1alpha1.GroupVersion.WithResource("tollgateexceptions")

// fromCluster reads the cluster of --kubeconfig: its identity, its policy
// reports and the exceptions in force.
func (f *reportFlags) fromCluster(ctx context.Context, now time.Time) (compliance.Input, error) {
	in, _, err := f.readCluster(ctx, f.kubeconfig, f.clusterName, now)
	return in, err
}

// readCluster reads one cluster's identity, its policy reports and the
// exceptions in force; name ("" for the kubeconfig's) names it. It
// returns the API server's address too, known even when reading fails.
func (f *reportFlags) readCluster(ctx context.Context, kubeconfig, name string, now time.Time) (in compliance.Input, server string, err error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil)
	rest, err := loader.ClientConfig()
	if err != nil {
		return in, "", fmt.Errorf("--kubeconfig: %w", err)
	}
	server = rest.Host
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rest = dynamic.ConfigFor(rest)
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return in, server, err
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		return in, server, err
	}
	unreadable := func(err error) error {
		return fmt.Errorf("reading the cluster at %s: %w", rest.Host, err)
	}

	cluster := &compliance.Cluster{Name: name, Server: rest.Host}
	if cluster.Name == "" {
		cluster.Name = kubeconfigClusterName(loader, rest.Host)
	}
	ver, err := kube.Discovery().ServerVersion()
	if err != nil {
		return in, server, unreadable(err)
	}
	cluster.KubernetesVersion = ver.GitVersion
	if ns, err := kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		in.Notes = append(in.Notes, "The cluster UID (the kube-system namespace's) could not be read: "+err.Error())
	} else {
		cluster.UID = string(ns.UID)
	}
	in.Cluster = cluster

	groups, err := kube.Discovery().ServerGroups()
	if err != nil {
		return in, server, unreadable(err)
	}
	served := map[string]bool{}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			served[v.GroupVersion] = true
		}
	}

	ev := &clusterEvidence{counted: map[string]compliance.Summary{}}
	var apis []string
	for _, api := range reportAPIs {
		gv := api.group + "/" + api.version
		if !served[gv] {
			continue
		}
		apis = append(apis, gv)
		for _, k := range api.kinds {
			if err := ev.readReports(ctx, dyn, k); err != nil {
				return in, server, unreadable(err)
			}
		}
	}
	switch {
	case len(apis) == 0:
		in.Notes = append(in.Notes, "Neither openreports.io/v1alpha1 nor wgpolicyk8s.io/v1alpha2 is served: the cluster holds no policy reports, so only manual controls and admission denials are shown.")
	default:
		in.Notes = append(in.Notes, fmt.Sprintf("Policy reports read: %d reports from %s.", ev.reports, strings.Join(apis, " and ")))
	}
	if ev.reports > 0 && !slices.ContainsFunc(ev.results, func(r compliance.Result) bool { return r.Source == compliance.SourceTollgate }) &&
		ev.counted[compliance.SourceTollgate].Total() == 0 {
		in.Notes = append(in.Notes, "No report from Tollgate's audit was found: is tollgate serve running with --audit?")
	}
	in.Notes = append(in.Notes, ev.notes...)
	if ev.hiddenNotes > 0 {
		in.Notes = append(in.Notes, fmt.Sprintf("… and %d more reports with problems.", ev.hiddenNotes))
	}
	in.Results = ev.results
	in.Counted = ev.counted
	in.Examined = ev.examined
	in.EvidenceKnown = ev.tollgateReports > 0 && ev.unrecorded == 0
	if ev.unrecorded > 0 {
		in.Notes = append(in.Notes, fmt.Sprintf("%d of Tollgate's %d reports do not record what its policies examined (written by an older audit): controls are decided on their results alone until the next scan.", ev.unrecorded, ev.tollgateReports))
	}
	cluster.PolicySets = slices.Sorted(slices.Values(ev.policySets))
	if ev.unnamedSets > 0 {
		in.Notes = append(in.Notes, fmt.Sprintf("%d of Tollgate's %d reports do not name the policy set that judged (written by an older audit).", ev.unnamedSets, ev.tollgateReports))
	}
	if other := slices.DeleteFunc(slices.Clone(ev.clusterNames), func(n string) bool { return n == cluster.Name }); len(other) > 0 {
		in.Notes = append(in.Notes, fmt.Sprintf("Tollgate's reports here were written by the cluster named %s (tollgate serve --cluster-name), read as %s: check the kubeconfig.", strings.Join(other, ", "), cluster.Name))
	}
	in.Versions.Scanner = versionList(ev.scanners, "not recorded in the reports")
	in.Versions.PolicyLibrary = versionList(ev.libraries, "not recorded in the reports")

	if served[v1alpha1.GroupVersion.String()] {
		xs, notes, err := honouredExceptions(ctx, dyn, now)
		if err != nil {
			return in, server, unreadable(err)
		}
		in.Exceptions = xs
		in.Notes = append(in.Notes, notes...)
	} else {
		in.Notes = append(in.Notes, "The TollgateException API is not served: no exception is in force.")
	}
	return in, server, nil
}

// clusterEvidence accumulates what the reports say.
type clusterEvidence struct {
	results             []compliance.Result
	counted             map[string]compliance.Summary
	scanners, libraries []string
	reports             int
	// examined is what Tollgate's reports say each policy judged;
	// unrecorded counts its reports that do not say (an older audit).
	examined                    []compliance.Examined
	tollgateReports, unrecorded int
	notes                       []string
	hiddenNotes                 int
	// policySets and clusterNames are what Tollgate's reports name
	// (AnnotationPolicySet, AnnotationCluster); unnamedSets counts its
	// reports that name no policy set.
	policySets, clusterNames []string
	unnamedSets              int
}

func (ev *clusterEvidence) note(s string) {
	if len(ev.notes) < maxNotes {
		ev.notes = append(ev.notes, s)
		return
	}
	ev.hiddenNotes++
}

// readReports lists one report kind in pages and converts each report.
func (ev *clusterEvidence) readReports(ctx context.Context, dyn dynamic.Interface, k reportResource) error {
	opts := metav1.ListOptions{Limit: reportPageSize}
	for {
		list, err := dyn.Resource(k.gvr).List(ctx, opts)
		if err != nil {
			if apimeta.IsNoMatchError(err) {
				return nil
			}
			return fmt.Errorf("listing %s: %w", k.gvr.GroupResource(), err)
		}
		for i := range list.Items {
			ev.add(&list.Items[i])
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			return nil
		}
	}
}

func (ev *clusterEvidence) add(obj *unstructured.Unstructured) {
	ev.reports++
	name := obj.GetKind() + " " + strings.TrimPrefix(obj.GetNamespace()+"/"+obj.GetName(), "/")
	results, meta, err := compliance.FromReport(obj.Object)
	if err != nil {
		ev.note(fmt.Sprintf("Some results could not be read and are left out: %v", err))
	}
	ev.results = append(ev.results, results...)
	if meta.Source == compliance.SourceTollgate {
		ev.tollgateReports++
		switch {
		case meta.PolicySet == "":
			ev.unnamedSets++
		case !slices.Contains(ev.policySets, meta.PolicySet):
			ev.policySets = append(ev.policySets, meta.PolicySet)
		}
		if meta.Cluster != "" && !slices.Contains(ev.clusterNames, meta.Cluster) {
			ev.clusterNames = append(ev.clusterNames, meta.Cluster)
		}
		switch {
		case meta.ExaminedRecorded:
			ev.examined = append(ev.examined, meta.Examined...)
		case errors.Is(err, compliance.ErrExaminedAnnotation):
			ev.unrecorded++
			ev.note(fmt.Sprintf("%s: what its policies examined is unreadable, so its evidence is left out.", name))
		default:
			ev.unrecorded++
		}
	}
	if meta.ScannerVersion != "" && !slices.Contains(ev.scanners, meta.ScannerVersion) {
		ev.scanners = append(ev.scanners, meta.ScannerVersion)
	}
	if meta.LibraryVersion != "" && !slices.Contains(ev.libraries, meta.LibraryVersion) {
		ev.libraries = append(ev.libraries, meta.LibraryVersion)
	}
	if meta.Summary == nil || meta.Source == "" {
		// No summary to trust: count what is listed.
		for i := range results {
			s := ev.counted[results[i].Source]
			s.Add(results[i].Result)
			ev.counted[results[i].Source] = s
		}
		return
	}
	s := ev.counted[meta.Source]
	sum := *meta.Summary
	s.Pass += sum.Pass
	s.Fail += sum.Fail
	s.Warn += sum.Warn
	s.Error += sum.Error
	s.Skip += sum.Skip
	ev.counted[meta.Source] = s
	// A report that reached its size cap lists fewer results than it
	// counts: say so, since controls are decided on the listed ones.
	listed := compliance.Summarize(results)
	if notListed := (sum.Fail + sum.Warn + sum.Error + sum.Skip) - (listed.Fail + listed.Warn + listed.Error + listed.Skip); notListed > 0 {
		ev.note(fmt.Sprintf("%s counts %d results it does not list (its size cap): controls are decided on the %d it lists.",
			name, notListed, listed.Fail+listed.Warn+listed.Error+listed.Skip))
	}
}

// honouredExceptions lists the TollgateExceptions in force: honoured by
// the webhook (Ready True) and unexpired. The others are noted.
func honouredExceptions(ctx context.Context, dyn dynamic.Interface, now time.Time) ([]policies.Exception, []string, error) {
	var out []policies.Exception
	var notes []string
	skipped := 0
	opts := metav1.ListOptions{Limit: reportPageSize}
	for {
		list, err := dyn.Resource(exceptionsGVR).List(ctx, opts)
		if err != nil {
			return nil, nil, fmt.Errorf("listing TollgateExceptions: %w", err)
		}
		for i := range list.Items {
			var obj v1alpha1.TollgateException
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &obj); err != nil {
				notes = append(notes, fmt.Sprintf("TollgateException %s/%s could not be read: %v", list.Items[i].GetNamespace(), list.Items[i].GetName(), err))
				continue
			}
			x := exceptionOf(&obj)
			ready := apimeta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
			var why string
			switch {
			case ready == nil:
				why = "the webhook has not judged it (no Ready condition)"
			case ready.Status != metav1.ConditionTrue:
				why = ready.Message
			case !x.Active(now):
				why = "expired at " + x.Expires.UTC().Format(time.RFC3339)
			}
			if why == "" {
				out = append(out, x)
				continue
			}
			if len(notes) < maxNotes {
				notes = append(notes, fmt.Sprintf("TollgateException %s/%s is not in force: %s.", obj.Namespace, obj.Name, strings.TrimSuffix(why, ".")))
			} else {
				skipped++
			}
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			break
		}
	}
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("… and %d more TollgateExceptions not in force.", skipped))
	}
	return out, notes, nil
}

// kubeconfigClusterName is the current context's cluster name, else the
// API server's host.
func kubeconfigClusterName(loader clientcmd.ClientConfig, server string) string {
	if raw, err := loader.RawConfig(); err == nil {
		if ctx, ok := raw.Contexts[raw.CurrentContext]; ok && ctx.Cluster != "" {
			return ctx.Cluster
		}
	}
	if u, err := url.Parse(server); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return server
}

func versionList(vs []string, none string) string {
	if len(vs) == 0 {
		return none
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}

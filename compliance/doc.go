// Package compliance turns policy results into evidence for auditors: it maps
// results to the controls of compliance frameworks (CIS Kubernetes
// Benchmark, NSA/CISA Kubernetes Hardening Guide, Pod Security Standards,
// SOC 2), decides per control whether it passed, failed or needs a manual
// review, and renders the report as HTML, Markdown, JSON or CSV, optionally
// signed with a cosign key.
//
// The data model is [Result]: one policy's verdict on one resource, from
// Tollgate or another engine. Results come from the engine's findings
// ([FromFinding], [PassResult]) or from PolicyReport objects in a cluster
// ([FromReport] reads openreports.io Reports and ClusterReports and
// wgpolicyk8s.io PolicyReports and ClusterPolicyReports). The background
// audit writes its Report objects with [ReportResult] and [Summarize], so
// what it writes is what the report reads back: the framework controls a
// result evidences travel in its properties under [PropControls].
//
// Frameworks are data files ([Framework], embedded and overridable from a
// directory with [LoadFrameworks]); a manual control states the reason it
// is reviewed by hand. [Build] assembles a [Report] from results, the
// exceptions in force and the admission denials of a decision log
// ([ReadDecisionLog]); [Write] renders it.
//
// Each automated control carries its [Evidence]: how many objects of
// which kinds its policies examined, per policy how many failed or were
// waived, and examples of objects that passed. The counts ([Examined])
// come from the annotation [AnnotationExamined] the audit sets on its
// Reports, or from the callers that evaluate manifests; a control whose
// policies examined nothing is MANUAL ("not evidenced"), never PASSED.
package compliance

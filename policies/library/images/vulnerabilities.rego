# METADATA
# title: Fixable vulnerabilities in production
# description: >-
#   A production workload must not run an image with a CRITICAL
#   vulnerability that has a fix: the fix is one rebuild away. The scan of
#   each image is input.imageScans[image] (a scanner must be configured);
#   images without a result are judged by images-unscanned. Parameters
#   (parameters.vulnerabilities): severities (default [CRITICAL]),
#   fixableOnly (default true: only vulnerabilities with a fixed version
#   count) and namespaceLabels (default {tier: production}: the labels a
#   Namespace must carry for the policy to judge its workloads; {} judges
#   every namespace).
# custom:
#   id: images-vulnerabilities
#   severity: high
#   action: warn
#   scope: pod
#   controls:
#     - framework: nsa
#       id: supply-chain/image-scanning
#     - framework: nsa
#       id: upgrades/patching
#     - framework: soc2
#       id: CC7.1
#   remediation: >-
#     Rebuild the image on a base and with dependencies at the fixed versions
#     the message names, push it and roll the workload out with the new tag or
#     digest.
package tollgate.images.vulnerabilities

import data.tollgate.lib.pods
import data.tollgate.lib.vulns

_params := p if {
	p := input.config.parameters.vulnerabilities
	is_object(p)
} else := {}

_severities := {upper(s) | some s in l; is_string(s)} if {
	l := _params.severities
	is_array(l)
} else := {"CRITICAL"}

_fixable_only if object.get(_params, "fixableOnly", true) != false

# _tally is what a scan counts of the vulnerabilities that count.
_tally(scan) := object.get(scan, "fixable", {}) if {
	_fixable_only
} else := object.get(scan, "counts", {})

_which := "fixable " if {
	_fixable_only
} else := ""

_labels := l if {
	l := _params.namespaceLabels
	is_object(l)
} else := {"tier": "production"}

_in_scope if {
	every k, v in _labels {
		input.namespace.metadata.labels[k] == v
	}
}

_counted(v) if {
	upper(v.severity) in _severities
	not _fixable_only
}

_counted(v) if {
	upper(v.severity) in _severities
	vulns.fixable(v)
}

violation contains {"msg": msg, "path": array.concat(c.path, ["image"])} if {
	_in_scope
	some c in pods.containers
	scan := input.imageScans[c.container.image]
	n := sum([object.get(_tally(scan), s, 0) | some s in _severities])
	n > 0
	found := [v | some v in object.get(scan, "vulnerabilities", []); _counted(v)]
	msg := sprintf("%s image %q has %d %s%s %s: %s", [
		pods.describe(c), c.container.image, n, _which,
		concat("/", sort(_severities)), vulns.noun(n), vulns.list(found, 5),
	])
}

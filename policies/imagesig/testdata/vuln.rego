# A cosign vulnerability attestation (predicate type
# https://cosign.sigstore.dev/attestation/vuln/v1) holding a Trivy JSON
# report: no CRITICAL finding, and a scan that finished within 7 days.
package attestations.vuln

max_age_days := 7

deny contains msg if {
	some result in input.predicate.scanner.result.Results
	some vuln in result.Vulnerabilities
	vuln.Severity == "CRITICAL"
	msg := sprintf("%s %s in %s %s (%s)", [vuln.Severity, vuln.VulnerabilityID, vuln.PkgName, vuln.InstalledVersion, result.Target])
}

deny contains "the scan has no finish time (metadata.scanFinishedOn)" if {
	not input.predicate.metadata.scanFinishedOn
}

deny contains msg if {
	finished := time.parse_rfc3339_ns(input.predicate.metadata.scanFinishedOn)
	age_days := (time.parse_rfc3339_ns(input.now) - finished) / (24 * 60 * 60 * 1000000000)
	age_days > max_age_days
	msg := sprintf("the scan finished %s, %d days ago; at most %d are accepted", [input.predicate.metadata.scanFinishedOn, floor(age_days), max_age_days])
}

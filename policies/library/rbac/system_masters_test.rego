package tollgate.rbac.system_masters_test

import data.tollgate.rbac.fixtures_test as f
import data.tollgate.rbac.system_masters

# Certificate requests for CN=mallory, O=system:masters and for CN=alice,
# O=devs (openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256), as
# the API holds them: base64 of the PEM.
_masters := "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIbU1JR05BZ0VBTUNzeEZ6QVZCZ05WQkFvTURuTjVjM1JsYlRwdFlYTjBaWEp6TVJBd0RnWURWUVFEREFkdApZV3hzYjNKNU1Ga3dFd1lIS29aSXpqMENBUVlJS29aSXpqMERBUWNEUWdBRVlqc2NHaTJvL2dYWlFCbERYRHc1Ck5rd0ZQSVYzQzJsbmkrbjUzK0hUdnIwVy8rY1B6Z3hRWE92aERxRTNJeEptY04waHc0VnE2bnZIT01CVHBERjUKcXFBQU1Bb0dDQ3FHU000OUJBTUNBMGdBTUVVQ0lIK1NKQXNEWnlYKyswWmVJVk85SVpmR2l0Yzd5NExsWGtKMQoxbC94YmwvWUFpRUF5NCs4SVBFN3grY0hvcWZxb2c1eE54ckdHd1I5R0JnME0rNlV5Y2hBT1NRPQotLS0tLUVORCBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K"

_alice := "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlIYk1JR0JBZ0VBTUI4eERUQUxCZ05WQkFvTUJHUmxkbk14RGpBTUJnTlZCQU1NQldGc2FXTmxNRmt3RXdZSApLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FFSHcwdGttWXNwd1FVQUZPQ091WFBRUGVtOGdaZ2ljOUg0dUlrCjhkMzNIYTQ4cVFKMENEandBMHFVZ0VDdzNsQVNKRXVkVmd4UXdNUFRSaUNGUHJGcWI2QUFNQW9HQ0NxR1NNNDkKQkFNQ0Ewa0FNRVlDSVFDS1MwWUYwcmJBOExXYjl4S29XeXpWZFRRWHYzWU55emYrK0lzZkh0TWNaZ0loQUoxZApWRnd3R0ZsbVJoclN2T295Ung0d2Rrc1Vwa3lDL0FSNndOZ1BDaTIwCi0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo="

# The first as PEM text, as a manifest written by hand may hold it.
_masters_pem := `-----BEGIN CERTIFICATE REQUEST-----
MIHmMIGNAgEAMCsxFzAVBgNVBAoMDnN5c3RlbTptYXN0ZXJzMRAwDgYDVQQDDAdt
YWxsb3J5MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYjscGi2o/gXZQBlDXDw5
NkwFPIV3C2lni+n53+HTvr0W/+cPzgxQXOvhDqE3IxJmcN0hw4Vq6nvHOMBTpDF5
qqAAMAoGCCqGSM49BAMCA0gAMEUCIH+SJAsDZyX++0ZeIVO9IZfGitc7y4LlXkJ1
1l/xbl/YAiEAy4+8IPE7x+cHoqfqog5xNxrGGwR9GBg0M+6UychAOSQ=
-----END CERTIFICATE REQUEST-----`

_csr(name, request) := {
	"kind": {"group": "certificates.k8s.io", "version": "v1", "kind": "CertificateSigningRequest"},
	"object": {"metadata": {"name": name}, "spec": {"request": request, "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}},
}

test_binding_to_system_masters if {
	system_masters.violation == {{
		"msg": `ClusterRoleBinding "ops" names Group "system:masters", whose members RBAC cannot restrict`,
		"path": ["subjects", 1],
	}} with input as f.crb("ops", "view", [f.user("alice"), f.group("system:masters")])
}

test_bootstrap_cluster_admin_binding_passes if {
	b := f.crb("cluster-admin", "cluster-admin", [f.group("system:masters")])
	count(system_masters.violation) == 0 with input as object.union(b, {"object": {"metadata": {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}}})
}

test_other_groups_pass if {
	count(system_masters.violation) == 0 with input as f.crb("ops", "cluster-admin", [f.group("system:master"), f.user("system:masters")])
}

test_csr_not_base64_reported if {
	system_masters.violation == {{
		"msg": `CertificateSigningRequest "x" has a spec.request that is not a PEM certificate request, so the organisations it asks for cannot be told`,
		"path": ["spec", "request"],
	}} with input as _csr("x", "not base64 !")
}

test_csr_not_pem_reported if {
	count(system_masters.violation) == 1 with input as _csr("x", base64.encode("hello"))
	count(system_masters.violation) == 1 with input as _csr("x", base64.encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"))
	count(system_masters.violation) == 1 with input as _csr("x", "-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----")
}

test_csr_wrong_type_reported if {
	count(system_masters.violation) == 1 with input as _csr("x", 42)
	count(system_masters.violation) == 1 with input as _csr("x", null)
	count(system_masters.violation) == 1 with input as _csr("x", ["a"])
}

test_csr_deleted_passes if {
	count(system_masters.violation) == 0 with input as f.deleted(_csr("x", "junk"))
}

test_csr_for_system_masters if {
	system_masters.violation == {{
		"msg": `CertificateSigningRequest "mallory" asks for a certificate in organisation "system:masters", whose holder RBAC cannot restrict`,
		"path": ["spec", "request"],
	}} with input as _csr("mallory", _masters)
}

test_csr_for_system_masters_as_pem_text if {
	count(system_masters.violation) == 1 with input as _csr("mallory", _masters_pem)
}

test_csr_for_other_organisation_passes if {
	count(system_masters.violation) == 0 with input as _csr("alice", _alice)
}

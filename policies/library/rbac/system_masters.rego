# METADATA
# title: The system:masters group
# description: >-
#   Every request from a member of the system:masters group is allowed
#   before RBAC is asked: no binding can be removed to take the right away,
#   and membership comes from the organisation of a client certificate,
#   which cannot be revoked before it expires. CIS 5.1.7 asks that the group
#   not be used. Reported are a binding that names Group system:masters
#   (other than the bootstrap cluster-admin binding the API server keeps)
#   and a CertificateSigningRequest asking for a certificate in organisation
#   system:masters. A request that cannot be read is reported too; one with
#   well-formed PEM around a malformed DER body fails to evaluate, which is
#   reported as a policy error, never a pass.
# custom:
#   id: rbac-system-masters
#   severity: critical
#   action: warn
#   scope: object
#   admission: false
#   kinds:
#     - rbac.authorization.k8s.io/ClusterRoleBinding
#     - rbac.authorization.k8s.io/RoleBinding
#     - certificates.k8s.io/CertificateSigningRequest
#   controls:
#     - framework: cis
#       id: "5.1.7"
#   remediation: >-
#     Bind cluster-admin (or a narrower role) to a group of your identity
#     provider instead of system:masters, and deny or delete requests for
#     system:masters certificates. Certificates issued outside the cluster
#     (from the cluster CA's key, as kubeadm does for its admin.conf) are
#     not visible to any API check: keep the CA key offline and rotate it if
#     such certificates may have leaked.
package tollgate.rbac.system_masters

import data.tollgate.lib.rbac

violation contains {"msg": msg, "path": s.path} if {
	b := rbac.binding
	some s in rbac.risky_subjects(b)
	s.kind == "Group"
	s.name == "system:masters"
	msg := sprintf("%s names Group \"system:masters\", whose members RBAC cannot restrict", [rbac.describe_binding(b)])
}

_csr if {
	input.kind.group == "certificates.k8s.io"
	input.kind.kind == "CertificateSigningRequest"
	object.get(input, "operation", "") != "DELETE"
}

_csr_name := object.get(input.object, ["metadata", "name"], "")

_request := object.get(input.object, ["spec", "request"], null)

_begin := "-----BEGIN CERTIFICATE REQUEST-----"

_end := "-----END CERTIFICATE REQUEST-----"

# _pem is the request as PEM text: spec.request is base64 of it in the
# API, or PEM itself in a manifest written by hand.
_pem := _request if {
	is_string(_request)
	startswith(_request, _begin)
} else := base64.decode(_request) if {
	is_string(_request)
	base64.is_valid(_request)
}

# _readable holds when the request is one PEM CERTIFICATE REQUEST block
# whose body is base64: what crypto.x509.parse_certificate_request needs
# before it reads the DER inside.
_readable if {
	text := trim_space(_pem)
	startswith(text, _begin)
	endswith(text, _end)
	body := replace(replace(replace(trim_suffix(trim_prefix(text, _begin), _end), "\n", ""), "\r", ""), " ", "")
	body != ""
	base64.is_valid(body)
}

violation contains {"msg": msg, "path": ["spec", "request"]} if {
	_csr
	_readable
	some org in _organisations(crypto.x509.parse_certificate_request(_pem))
	org == "system:masters"
	msg := sprintf("CertificateSigningRequest %q asks for a certificate in organisation \"system:masters\", whose holder RBAC cannot restrict", [_csr_name])
}

violation contains {"msg": msg, "path": ["spec", "request"]} if {
	_csr
	not _readable
	msg := sprintf("CertificateSigningRequest %q has a spec.request that is not a PEM certificate request, so the organisations it asks for cannot be told", [_csr_name])
}

_organisations(csr) := orgs if {
	orgs := csr.Subject.Organization
	is_array(orgs)
} else := []

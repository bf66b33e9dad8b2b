# Package tollgate.lib.images parses container image references the way the
# container runtime and Kubernetes do, and matches them against registry
# allow-list entries.
#
# Parsing is Tollgate's builtin tollgate.parse_image, which runs the same Go
# code as the runtime (github.com/distribution/reference,
# ParseNormalizedNamed), so a policy can never read a reference differently
# from the node that pulls it. images_parity_test.go checks them against each
# other over references of every shape.
package tollgate.lib.images

_default_domain := "docker.io"

_legacy_default_domain := "index.docker.io"

# parse reads an image reference. For "nginx" it returns
#   {"valid": true, "error": "", "registry": "docker.io",
#    "repository": "library/nginx", "path": ["library", "nginx"],
#    "tag": "", "digest": ""}
# and for anything the runtime would refuse {"valid": false, "error": why, ...}
# with empty fields. The tag is "" when the reference has none (no "latest"
# default).
parse(ref) := tollgate.parse_image(ref)

# registry_allowed holds when an allow-list entry admits a parsed reference.
# An entry is "host" or "host/path/segments": the host (with its port, if
# any) must equal the reference's registry, ignoring case, and the entry's
# path segments must be a prefix of the reference's path, segment by segment.
# So "corp.io" admits neither "corp.io.evil.net/x" nor "corp.io:5000/x", and
# "ghcr.io/corp" admits "ghcr.io/corp/app" but not "ghcr.io/corporate/app".
registry_allowed(parsed, entry) if {
	parsed.valid
	is_string(entry)
	segments := split(trim_right(trim_space(entry), "/"), "/")
	host := _normalize_host(segments[0])
	host != ""
	host == lower(parsed.registry)
	prefix := array.slice(segments, 1, count(segments))
	count(prefix) <= count(parsed.path)
	array.slice(parsed.path, 0, count(prefix)) == prefix
}

_normalize_host(host) := _default_domain if lower(host) == _legacy_default_domain

else := lower(host)

# allowed holds when some entry of the allow-list admits the parsed reference.
allowed(parsed, entries) if {
	some entry in entries
	registry_allowed(parsed, entry)
}

# Package tollgate.lib.pss tells the Pod Security Standards policies which
# version of the standard they judge by. The standard changes between
# Kubernetes releases (a sysctl becomes safe, a control is added, Windows
# pods become exempt from a Linux-only one); each policy asks at_least(m)
# where a control changed in v1.m.
#
# The version is read as the API server's Pod Security admission reads it:
# the Namespace's pod-security.kubernetes.io/enforce-version label when the
# Namespace carries it, else the config's podSecurity.version (default
# "latest"). A value is "latest" or "v1.<minor>"; any other value, and a
# minor newer than any release, is judged as latest.
package tollgate.lib.pss

# version_label is the Namespace label that pins the version, as for Pod
# Security admission.
version_label := "pod-security.kubernetes.io/enforce-version"

# version is the version asked for: the Namespace's label, else the
# config's podSecurity.version, else "latest".
version := v if {
	v := input.namespace.metadata.labels[version_label]
} else := v if {
	v := input.config.podSecurity.version
} else := "latest"

# minor is the minor release of version ("v1.29": 29); undefined when the
# version is judged as latest.
minor := to_number(m[1]) if {
	is_string(version)
	some m in regex.find_all_string_submatch_n(`^v1\.(0|[1-9][0-9]*)$`, version, 1)
}

# judged names the version judged for messages: "v1.29", or "latest".
judged := sprintf("v1.%d", [minor]) if minor != null else := "latest"

# at_least(m) holds when the version judged is v1.m or newer; latest is
# newer than every release.
at_least(m) if _newest >= m

_newest := n if {
	n := minor
} else := 1000000

# Package tollgate.lib.pods gives pod-scoped policies a uniform view of the
# pod they judge (input.pod): its containers of every kind with their paths,
# its volumes, its pod-level security context and its operating system.
# Paths are relative to a Pod; the engine rewrites them for pod controllers.
package tollgate.lib.pods

# spec is the pod's spec, or an empty object when there is no pod.
spec := s if {
	s := input.pod.spec
	is_object(s)
} else := {}

# metadata is the pod's metadata, or an empty object.
metadata := m if {
	m := input.pod.metadata
	is_object(m)
} else := {}

# annotations are the pod's annotations, or an empty object.
annotations := a if {
	a := metadata.annotations
	is_object(a)
} else := {}

# security_context is the pod-level securityContext, or an empty object.
security_context := sc if {
	sc := spec.securityContext
	is_object(sc)
} else := {}

# security_context_path is where the pod-level securityContext lives.
security_context_path := ["spec", "securityContext"]

_container_fields := {
	"containers": "container",
	"initContainers": "initContainer",
	"ephemeralContainers": "ephemeralContainer",
}

# containers is every container of the pod, init and ephemeral ones included:
# {"kind": "container" | "initContainer" | "ephemeralContainer",
#  "container": {...}, "path": ["spec", "containers", 0]}. A null entry is
# an empty container, as the API server decodes it.
containers contains {"kind": kind, "container": container, "path": ["spec", field, i]} if {
	some field, kind in _container_fields
	list := spec[field]
	is_array(list)
	some i, c in list
	container := _entry(c)
}

# resource_containers is containers without the ephemeral ones: the
# containers that carry resources and count towards the pod's requests.
resource_containers contains c if {
	some c in containers
	c.kind != "ephemeralContainer"
}

# volumes is every volume of the pod as {"volume": {...}, "path": ["spec", "volumes", 0]};
# a null entry is an empty volume.
volumes contains {"volume": volume, "path": ["spec", "volumes", i]} if {
	list := spec.volumes
	is_array(list)
	some i, v in list
	volume := _entry(v)
}

# _entry is a list entry as the API server decodes it: an object, or an
# empty one for null; undefined for anything else.
_entry(e) := e if is_object(e)

_entry(null) := {}

# is_windows holds for pods that declare spec.os.name: windows; the Pod
# Security Standards exempt them from the Linux-only restricted controls.
is_windows if spec.os.name == "windows"

# in_user_namespace holds for pods that run in a user namespace
# (spec.hostUsers: false): root in the container is not root on the node.
in_user_namespace if spec.hostUsers == false

_kind_words := {
	"container": "container",
	"initContainer": "init container",
	"ephemeralContainer": "ephemeral container",
}

# describe names a container from containers for messages: `init container "setup"`.
describe(c) := sprintf("%s %q", [_kind_words[c.kind], name(c)])

# name is a container's name, or "" when it has none.
name(c) := n if {
	n := c.container.name
	is_string(n)
} else := ""

# security_context_of is a container's securityContext, or an empty object.
security_context_of(c) := sc if {
	sc := c.container.securityContext
	is_object(sc)
} else := {}

# field_path is the path of a field of a container's securityContext.
field_path(c, fields) := array.concat(array.concat(c.path, ["securityContext"]), fields)

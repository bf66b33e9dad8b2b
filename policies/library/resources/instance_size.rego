# METADATA
# title: Cloud instance size
# description: >-
#   Max instance size without approval. A governed kind (a Crossplane claim
#   for a managed database, listed in the config's governedKinds) may not
#   ask for an instance class above its profile's cap unless an approved
#   exception (a TollgateException with its approver and ticket, in a
#   namespace the platform designates) says so. The classes are ordered
#   smallest first in parameters.cloud.instanceClasses, and the cap is
#   parameters.cloud.maxInstanceClass, both read from input.profile.parameters
#   (the config's parameters overlaid with the namespace profile's) or, with
#   no profiles, from the config's parameters; without a cap the policy
#   finds nothing. The class is read from the field each instance price
#   line of the kind names (governedKinds[].pricing[].key). A class the
#   ordering does not list, or a missing class field, is denied too: its
#   size cannot be told. The message gives the class's monthly price when
#   the price catalogue lists it (data.tollgate.prices, which tollgate serve
#   fills from its catalogue).
# custom:
#   id: cloud-instance-size
#   severity: medium
#   action: enforce
#   scope: object
#   governedKinds: true
#   controls:
#     - framework: soc2
#       id: CC8.1
#   remediation: >-
#     Choose an instance class at or below the cap, or have the platform team
#     approve a TollgateException for cloud-instance-size naming the approver
#     and the ticket.
package tollgate.resources.cloud_instance_size

_params := p if {
	p := input.profile.parameters
	is_object(p)
} else := object.get(input, ["config", "parameters"], {})

_cloud := c if {
	c := _params.cloud
	is_object(c)
} else := {}

_order := o if {
	o := _cloud.instanceClasses
	is_array(o)
} else := []

_cap := c if {
	c := _cloud.maxInstanceClass
	is_string(c)
	c != ""
}

_profile := sprintf("profile %q", [input.profile.name]) if is_string(input.profile.name) else := "the config"

_rank(class) := i if {
	some i, c in _order
	c == class
}

# The fields naming the instance class of this kind.
_keys contains line.key if {
	some g in object.get(input, ["config", "governedKinds"], [])
	g.kind == input.kind.kind
	object.get(g, "group", "") == input.kind.group
	some line in object.get(g, "pricing", [])
	line.class == "instance"
}

_skip if input.operation == "DELETE"

_price(class) := sprintf(", %s %.2f a month", [data.tollgate.prices.currency, p * 730]) if {
	p := data.tollgate.prices.instanceClasses[class]
	is_number(p)
} else := ""

violation contains {"msg": msg, "path": path} if {
	not _skip
	some key in _keys
	path := split(key, ".")
	class := object.get(input.object, path, null)
	_rank(class) > _rank(_cap)
	msg := sprintf(
		"instance class %q%s is above the %q cap of %s without approval",
		[class, _price(class), _cap, _profile],
	)
}

violation contains {"msg": msg, "path": path} if {
	not _skip
	_cap
	some key in _keys
	path := split(key, ".")
	class := object.get(input.object, path, null)
	is_string(class)
	not _rank(class)
	msg := sprintf(
		"instance class %q is not one the platform offers (parameters.cloud.instanceClasses: %s), so its size against the %q cap of %s cannot be told",
		[class, concat(", ", [sprintf("%v", [c]) | some c in _order]), _cap, _profile],
	)
}

violation contains {"msg": msg, "path": path} if {
	not _skip
	_cap
	some key in _keys
	path := split(key, ".")
	not is_string(object.get(input.object, path, null))
	msg := sprintf("%s %q has no instance class at %s, so its size against the %q cap of %s cannot be told", [
		input.kind.kind, object.get(input.object, ["metadata", "name"], ""), key, _cap, _profile,
	])
}

violation contains {"msg": msg, "path": ["parameters", "cloud", "maxInstanceClass"]} if {
	not _skip
	_cap
	count(_keys) > 0
	not _rank(_cap)
	msg := sprintf("the cap %q of %s is not among parameters.cloud.instanceClasses, so no class can be judged against it", [_cap, _profile])
}

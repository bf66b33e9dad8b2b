package tollgate.cluster.default_namespace_test

import data.tollgate.cluster.default_namespace

_in(kind, name, ns) := {"kind": {"kind": kind}, "object": {"kind": kind, "metadata": {"name": name, "namespace": ns}}}

test_other_namespaces_allowed if {
	count(default_namespace.violation) == 0 with input as _in("Deployment", "web", "shop")
	count(default_namespace.violation) == 0 with input as {"kind": {"kind": "Deployment"}, "object": {"metadata": {"name": "web"}}}
}

test_kubernetes_own_objects_allowed if {
	every k in [["Service", "kubernetes"], ["ServiceAccount", "default"], ["ConfigMap", "kube-root-ca.crt"], ["EndpointSlice", "kubernetes"], ["Endpoints", "kubernetes"]] {
		count(default_namespace.violation) == 0 with input as _in(k[0], k[1], "default")
	}
}

test_objects_in_default_denied if {
	default_namespace.violation == {{"msg": `Deployment "web" is in the default namespace`, "path": ["metadata", "namespace"]}} with input as _in("Deployment", "web", "default")
	count(default_namespace.violation) == 1 with input as _in("ServiceAccount", "builder", "default")
	count(default_namespace.violation) == 1 with input as _in("ConfigMap", "kubernetes", "default")
	count(default_namespace.violation) == 1 with input as _in("Secret", "kube-root-ca.crt", "default")
}

test_admission_namespace_from_request if {
	count(default_namespace.violation) == 1 with input as {
		"operation": "CREATE",
		"kind": {"kind": "Pod"},
		"object": {"kind": "Pod", "metadata": {"generateName": "web-"}},
		"namespace": {"metadata": {"name": "default"}},
	}
}

test_deleting_allowed if {
	count(default_namespace.violation) == 0 with input as object.union(_in("Pod", "web", "default"), {"operation": "DELETE"})
}

test_controlled_pods_judged_at_their_controller if {
	uid := "1234"
	count(default_namespace.violation) == 0 with input as {
		"kind": {"kind": "Pod"},
		"object": {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "default", "ownerReferences": [{"controller": true, "uid": uid, "kind": "ReplicaSet", "name": "web"}]}},
		"controller": {"uid": uid, "kind": "ReplicaSet", "name": "web"},
	}
}

test_odd_names_do_not_crash if {
	default_namespace.violation == {{"msg": `Pod a value of type object is in the default namespace`, "path": ["metadata", "namespace"]}} with input as _in("Pod", {"x": 1}, "default")
}

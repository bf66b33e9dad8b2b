package tollgate.pss.restricted.volume_types_test

import data.tollgate.pss.restricted.volume_types

test_allowed_volume_types if {
	count(volume_types.violation) == 0 with input as {"pod": {"spec": {
		"containers": [{"name": "app"}],
		"volumes": [
			{"name": "a", "configMap": {"name": "cfg"}},
			{"name": "b", "csi": {"driver": "secrets-store.csi.k8s.io"}},
			{"name": "c", "downwardAPI": {"items": []}},
			{"name": "d", "emptyDir": {"medium": "Memory"}},
			{"name": "e", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
			{"name": "f", "persistentVolumeClaim": {"claimName": "data"}},
			{"name": "g", "projected": {"sources": []}},
			{"name": "h", "secret": {"secretName": "tls"}},
			{"name": "i", "image": {"reference": "registry.corp.example/models/llama:1.0", "pullPolicy": "IfNotPresent"}},
			{"name": "j"},
		],
	}}}
}

test_host_path_and_nfs_denied if {
	v := volume_types.violation with input as {"pod": {"spec": {
		"containers": [{"name": "app"}],
		"volumes": [
			{"name": "cache", "emptyDir": {}},
			{"name": "logs", "hostPath": {"path": "/var/log"}},
			{"name": "share", "nfs": {"server": "nfs.corp", "path": "/exports"}},
		],
	}}}
	v == {
		{
			"msg": `volume "logs" is of type hostPath, which the restricted Pod Security Standard does not allow`,
			"path": ["spec", "volumes", 1, "hostPath"],
		},
		{
			"msg": `volume "share" is of type nfs, which the restricted Pod Security Standard does not allow`,
			"path": ["spec", "volumes", 2, "nfs"],
		},
	}
}

test_null_source_ignored if {
	count(volume_types.violation) == 0 with input as {"pod": {"spec": {"volumes": [
		{"name": "a", "emptyDir": {}, "hostPath": null},
	]}}}
}

# A volume with no source (or only null ones) is an emptyDir: the API server
# defaults it to one. A key the API does not know is no source.
test_no_source_is_an_empty_dir if {
	count(volume_types.violation) == 0 with input as {"pod": {"spec": {"volumes": [
		{"name": "a"},
		{"name": "b", "hostPath": null},
		{"name": "c", "hostpath": {"path": "/"}},
	]}}}
}

# The standard allows a volume as soon as one allowed source is set; the API
# server accepts one source per volume.
test_any_allowed_source_allows if {
	count(volume_types.violation) == 0 with input as {"pod": {"spec": {"volumes": [
		{"name": "a", "emptyDir": {}, "hostPath": {"path": "/"}},
	]}}}
}

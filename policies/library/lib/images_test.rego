package tollgate.lib.images_test

import data.tollgate.lib.images

_digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

test_parse_short_name_normalizes_to_docker_hub if {
	images.parse("nginx") == {
		"valid": true,
		"error": "",
		"registry": "docker.io",
		"repository": "library/nginx",
		"path": ["library", "nginx"],
		"tag": "",
		"digest": "",
	}
}

test_parse_registry_port_tag if {
	p := images.parse("reg:5000/ns/img:tag")
	p.registry == "reg:5000"
	p.path == ["ns", "img"]
	p.tag == "tag"
}

test_parse_tag_and_digest if {
	p := images.parse(concat("@", ["ghcr.io/corp/app:1.0", _digest]))
	p.valid
	p.tag == "1.0"
	p.digest == _digest
}

test_parse_rejects if {
	not images.parse("Nginx").valid
	not images.parse("").valid
	not images.parse("nginx:").valid
	not images.parse("ghcr.io/corp//app").valid
	not images.parse(null).valid
	not images.parse(42).valid
	not images.parse("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").valid
}

test_registry_allowed_host if {
	images.registry_allowed(images.parse("corp.io/team/app:1"), "corp.io")
	images.registry_allowed(images.parse("CORP.io/team/app:1"), "corp.io")
	images.registry_allowed(images.parse("corp.io/team/app:1"), "Corp.IO/")
}

test_registry_allowed_host_is_exact if {
	not images.registry_allowed(images.parse("corp.io.evil.net/x"), "corp.io")
	not images.registry_allowed(images.parse("evilcorp.io/x"), "corp.io")
	not images.registry_allowed(images.parse("corp.io:5000/x"), "corp.io")
	images.registry_allowed(images.parse("corp.io:5000/x"), "corp.io:5000")
	not images.registry_allowed(images.parse("corp.io/x"), "corp.io:5000")
}

test_registry_allowed_path_by_segments if {
	images.registry_allowed(images.parse("ghcr.io/corp/app"), "ghcr.io/corp")
	images.registry_allowed(images.parse("ghcr.io/corp/team/app"), "ghcr.io/corp")
	images.registry_allowed(images.parse("ghcr.io/corp/app"), "ghcr.io/corp/app")
	not images.registry_allowed(images.parse("ghcr.io/corporate/app"), "ghcr.io/corp")
	not images.registry_allowed(images.parse("ghcr.io/corp"), "ghcr.io/corp/app")
	not images.registry_allowed(images.parse("ghcr.io/other/corp/app"), "ghcr.io/corp")
}

test_registry_allowed_docker_hub if {
	images.registry_allowed(images.parse("nginx"), "docker.io")
	images.registry_allowed(images.parse("nginx"), "docker.io/library")
	images.registry_allowed(images.parse("nginx"), "index.docker.io")
	not images.registry_allowed(images.parse("bitnami/redis"), "docker.io/library")
}

test_registry_allowed_never_admits_invalid if {
	not images.registry_allowed(images.parse("Corp.io/Bad"), "corp.io")
	not images.registry_allowed(images.parse("corp.io/x"), "")
	not images.registry_allowed(images.parse("corp.io/x"), 7)
}

test_registry_without_domain_is_never_allowed if {
	# distribution/reference reads "my_registry.io/app" as a path with no domain.
	p := images.parse("my_registry.io/app")
	p.valid
	p.registry == ""
	not images.registry_allowed(p, "my_registry.io")
}

test_allowed_any_entry if {
	images.allowed(images.parse("ghcr.io/corp/app"), ["docker.io", "ghcr.io/corp"])
	not images.allowed(images.parse("ghcr.io/corp/app"), [])
}

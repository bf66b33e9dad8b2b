package tollgate.lib.labels_test

import data.tollgate.lib.labels

test_valid_value if {
	labels.valid_value("")
	labels.valid_value("payments")
	labels.valid_value("Team_A-1.b")
	labels.valid_value(concat("", ["a" | some _ in numbers.range(1, 63)]))
}

test_invalid_value if {
	not labels.valid_value("-payments")
	not labels.valid_value("payments.")
	not labels.valid_value("with space")
	not labels.valid_value("a/b")
	not labels.valid_value("équipe")
	not labels.valid_value("payments\n")
	not labels.valid_value(concat("", ["a" | some _ in numbers.range(1, 64)]))
	not labels.valid_value(42)
	not labels.valid_value(null)
}

test_dns1123_label if {
	labels.dns1123_label("web-1")
	labels.dns1123_label("1web")
	not labels.dns1123_label("web.1")
	not labels.dns1123_label("Web")
	not labels.dns1123_label("web-")
	not labels.dns1123_label("")
	not labels.dns1123_label(concat("", ["a" | some _ in numbers.range(1, 64)]))
}

test_dns1123_subdomain if {
	labels.dns1123_subdomain("web.example.com")
	labels.dns1123_subdomain("web")
	not labels.dns1123_subdomain("web..example")
	not labels.dns1123_subdomain(".web")
	not labels.dns1123_subdomain("web_1")
	not labels.dns1123_subdomain(concat(".", [concat("", ["a" | some _ in numbers.range(1, 50)]) | some _ in numbers.range(1, 5)]))
}

test_dns1035_label if {
	labels.dns1035_label("web-1")
	not labels.dns1035_label("1web")
}

test_full_match if {
	labels.full_match("team-[a-z]+", "team-payments")
	not labels.full_match("team-[a-z]+", "my-team-payments")
	not labels.full_match("team-[a-z]+", "team-payments-2")
	labels.full_match("^team-.*$", "team-x")
	labels.full_match("a|b", "b")
	not labels.full_match("a|b", "ab")
}

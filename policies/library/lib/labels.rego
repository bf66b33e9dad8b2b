# Package tollgate.lib.labels checks label values and object names against
# the syntax Kubernetes enforces (k8s.io/apimachinery/pkg/util/validation).
package tollgate.lib.labels

_label_value := `^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`

_dns1123_label := `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`

_dns1123_subdomain := `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`

_dns1035_label := `^[a-z]([-a-z0-9]*[a-z0-9])?$`

# valid_value holds for a valid label value: at most 63 characters, empty or
# alphanumerics with '-', '_' and '.' inside.
valid_value(v) if {
	is_string(v)
	count(v) <= 63
	regex.match(_label_value, v)
}

# dns1123_label holds for a DNS-1123 label: at most 63 lowercase
# alphanumerics and '-', starting and ending with an alphanumeric. Namespace
# names are labels.
dns1123_label(v) if {
	is_string(v)
	count(v) <= 63
	regex.match(_dns1123_label, v)
}

# dns1123_subdomain holds for a DNS-1123 subdomain: at most 253 characters,
# DNS-1123 labels joined by '.'. Most object names are subdomains.
dns1123_subdomain(v) if {
	is_string(v)
	count(v) <= 253
	regex.match(_dns1123_subdomain, v)
}

# dns1035_label holds for a DNS-1035 label: a DNS-1123 label that starts
# with a letter. Service names are DNS-1035 labels.
dns1035_label(v) if {
	dns1123_label(v)
	regex.match(_dns1035_label, v)
}

# full_match holds when the RE2 pattern matches all of s, not just part of it.
full_match(pattern, s) if regex.match(sprintf("^(?:%s)$", [pattern]), s)

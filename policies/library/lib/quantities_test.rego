package tollgate.lib.quantities_test

import data.tollgate.lib.quantities

test_parse if {
	quantities.parse("500m") == 0.5
	quantities.parse("2") == 2
	quantities.parse(2) == 2
	quantities.parse("16Gi") == 17179869184
	quantities.parse("1G") == 1000000000
	quantities.parse("128974848") == 128974848
	quantities.parse("129e6") == 129000000
	quantities.parse("250000000n") == 0.25
	quantities.parse("250000u") == 0.25
}

test_parse_rejects_what_is_not_a_quantity if {
	not quantities.parse("lots")
	not quantities.parse("1 Gi")
	not quantities.parse("")
	not quantities.parse("1GB")
	not quantities.parse(null)
}

test_format_cpu if {
	quantities.format_cpu(12) == "12"
	quantities.format_cpu(1.5) == "1500m"
	quantities.format_cpu(quantities.parse("100m") + quantities.parse("200m")) == "300m"
}

test_format_memory if {
	quantities.format_memory(quantities.parse("64Gi")) == "64Gi"
	quantities.format_memory(quantities.parse("1.5Gi")) == "1536Mi"
	quantities.format_memory(quantities.parse("100Ki")) == "100Ki"
	quantities.format_memory(1000) == "1000"
}

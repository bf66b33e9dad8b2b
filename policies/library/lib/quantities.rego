# Package tollgate.lib.quantities reads Kubernetes resource quantities
# ("500m", "2", "16Gi", "1e3") as numbers and writes them back for messages.
package tollgate.lib.quantities

# parse returns the value of a quantity (cores for CPU, bytes for memory),
# and is undefined for anything that is not a quantity. It is Tollgate's
# builtin tollgate.parse_quantity, which reads quantities with the same Go
# code as the API server (k8s.io/apimachinery/pkg/api/resource). YAML may
# give "cpu: 2" as a number; numbers are read as Kubernetes reads them.
parse(q) := tollgate.parse_quantity(q)

_gi := 1073741824

_mi := 1048576

_ki := 1024

# format_cpu writes cores as Kubernetes would: "12", "1500m".
format_cpu(cores) := sprintf("%d", [round(cores)]) if {
	round(cores * 1000) % 1000 == 0
} else := sprintf("%dm", [round(cores * 1000)])

# format_memory writes bytes in the largest binary unit that divides them:
# "64Gi", "1536Mi", "100Ki", or plain bytes.
format_memory(bytes) := sprintf("%dGi", [round(bytes) / _gi]) if {
	round(bytes) % _gi == 0
} else := sprintf("%dMi", [round(bytes) / _mi]) if {
	round(bytes) % _mi == 0
} else := sprintf("%dKi", [round(bytes) / _ki]) if {
	round(bytes) % _ki == 0
} else := sprintf("%d", [round(bytes)])

// Package chart tests the Helm chart in charts/tollgate: helm lint and
// helm template with default and non-default values against golden
// renders, the values schema turning bad values away with the field's path,
// the CRD templates kept equal to what `make generate` writes, the chart's
// own workload passing `tollgate check`, the alerting rules and dashboard
// queries parsed by promtool, and the rendered chart applied to the real API
// server (test/cluster): every object accepted, CRDs established, RBAC
// allowing what `tollgate serve` needs and nothing else, and the server run
// with the chart's arguments and service account until a Deployment is
// denied through the chart's webhook configurations.
//
// helm comes from `make helm` (bin/helm, built from the Go module proxy);
// promtool from Debian's prometheus package (`make debs`).
//
//	go test ./test/chart -update   # rewrite the golden renders and the CRD templates
package chart

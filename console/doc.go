// Package console is `tollgate ui`: a read-only web console for the people
// who consume Tollgate's results (team leads watching their budget,
// security reviewers triaging violations, auditors), served on loopback
// by the caller's own process with the caller's own kubeconfig. Every read
// is the caller's, so what their RBAC does not let them read, the console
// does not show; the console holds no credentials of its own and writes
// nothing.
//
// Pages are rendered on the server with html/template, charts are SVG
// drawn from the numbers, and there is no JavaScript: a page reads the
// same in any browser, a screen reader or curl. Every table exports to CSV
// (?format=csv) and every object links to its YAML.
package console

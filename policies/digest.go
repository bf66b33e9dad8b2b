package policies

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// ModulesDigest names an exact set of policy modules: sha256 over every
// module's name and text, sorted by name, so the same modules give the
// same digest wherever they are loaded (a cluster's Tollgate, `tollgate
// report --from`). Decision logs and audit reports record it, so an
// auditor can tell which policy set judged what.
func ModulesDigest(mods []Module) string {
	h := sha256.New()
	sorted := slices.Clone(mods)
	slices.SortFunc(sorted, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range sorted {
		fmt.Fprintf(h, "%d:%s\n%d:%s\n", len(m.Name), m.Name, len(m.Text), m.Text)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

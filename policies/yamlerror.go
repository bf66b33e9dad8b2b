package policies

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"

	"sigs.k8s.io/yaml"
)

var yamlLine = regexp.MustCompile(`\bline \d+\b`)

// YAMLError returns err, the error sigs.k8s.io/yaml gave for data, with
// the line of the problem when the decoder did not name one (it says
// "mapping values are not allowed in this context" or "control characters
// are not allowed" without a line): the first line at which data, cut
// there, fails the same way. Config and price files are read with it, so
// every problem a user sees says where it is.
func YAMLError(data []byte, err error) error {
	if err == nil || yamlLine.MatchString(err.Error()) {
		return err
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	fails := func(n int) bool {
		_, e := yaml.YAMLToJSON(bytes.Join(lines[:n], nil))
		return e != nil && e.Error() == err.Error()
	}
	n := sort.Search(len(lines), func(i int) bool { return fails(i + 1) }) + 1
	if n > len(lines) {
		n = len(lines)
	}
	return fmt.Errorf("line %d: %w", n, err)
}

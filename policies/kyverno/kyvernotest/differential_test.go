package kyvernotest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The tables `kyverno test` (the Kyverno v1.19.1 CLI, built with `go build
// github.com/kyverno/kyverno/cmd/cli/kubectl-kyverno` in a copy of the
// test/tools/peers module, which pins Kyverno v1.19.1) printed for the same
// suites are in testdata/kyverno-cli, recorded with
//
//	cd testdata && kyverno test SUITE --remove-color > kyverno-cli/SUITE.txt
//
// Tollgate must give the same row for every result: policy, rule,
// resource, result and reason.
func TestSameTablesAsKyvernoCLI(t *testing.T) {
	for _, suite := range []string{"pass", "fail"} {
		t.Run(suite, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/kyverno-cli/" + suite + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			want := kyvernoRows(string(raw))
			if len(want) == 0 {
				t.Fatal("no rows in the recorded Kyverno output")
			}
			_, out := run(t, "testdata/"+suite)
			if diff := cmp.Diff(want, tollgateRows(out)); diff != "" {
				t.Errorf("rows (-kyverno +tollgate):\n%s", diff)
			}
		})
	}
}

// kyvernoRows reads the rows of `kyverno test` tables: "│ 1 │ policy │
// rule │ resource │ Pass │ Ok │".
func kyvernoRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		cells := strings.Split(line, "│")
		if len(cells) < 8 {
			continue
		}
		id := strings.TrimSpace(cells[1])
		if id == "" || id[0] < '0' || id[0] > '9' {
			continue
		}
		row := []string{id}
		for _, c := range cells[2:7] {
			row = append(row, strings.TrimSpace(c))
		}
		rows = append(rows, row)
	}
	return rows
}

var columns = regexp.MustCompile(`\s{2,}`)

// tollgateRows reads the rows of Run's tables; "-" is an empty cell.
func tollgateRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		cells := columns.Split(strings.TrimSpace(line), -1)
		if !strings.HasPrefix(line, "    ") || len(cells) != 6 || cells[0][0] < '0' || cells[0][0] > '9' {
			continue
		}
		for i, c := range cells {
			if c == "-" {
				cells[i] = ""
			}
		}
		rows = append(rows, cells)
	}
	return rows
}

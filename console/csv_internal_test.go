package console

import (
	"slices"
	"testing"
)

// A cell a user controls (a message, a reason) that a spreadsheet would run
// as a formula is exported as text.
func TestCSVCellsAreNotFormulas(t *testing.T) {
	got := csvSafe([]string{`=HYPERLINK("http://evil.example","x")`, "+1", "-2+3", "@SUM(A1)", "\tcmd", "plain", "", "a=b"})
	want := []string{`'=HYPERLINK("http://evil.example","x")`, "'+1", "'-2+3", "'@SUM(A1)", "'\tcmd", "plain", "", "a=b"}
	if !slices.Equal(got, want) {
		t.Errorf("csvSafe = %q, want %q", got, want)
	}
}

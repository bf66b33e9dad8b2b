package logchain_test

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/compliance/logchain"
)

// TestSplitHash: a line built as the writer builds it splits back into its
// content and hash, keyed or not; lines without a whole hash field do not.
func TestSplitHash(t *testing.T) {
	content := []byte(`{"time":"2026-12-05T00:00:00Z","seq":1,"prev":""`)
	for _, key := range [][]byte{nil, []byte("secret")} {
		sum := logchain.LineHash(key, content)
		line := string(content) + logchain.HashField + sum + `"}`
		got, gotSum, ok := logchain.SplitHash([]byte(line))
		if !ok || string(got) != string(content) || gotSum != sum || len(sum) != logchain.HashLen {
			t.Errorf("key %q: split %q %q %v", key, got, gotSum, ok)
		}
	}
	if logchain.LineHash(nil, content) == logchain.LineHash([]byte("secret"), content) {
		t.Error("a keyed hash equals the plain one")
	}
	for _, bad := range []string{
		"", `{}`, `{"a":1}`,
		`{"hash":"` + strings.Repeat("0", logchain.HashLen) + `"}`, // no content before the field
		`{"a":1` + logchain.HashField + strings.Repeat("0", logchain.HashLen-1) + `"}`,
		`{"a":1` + logchain.HashField + strings.Repeat("0", logchain.HashLen) + `"`,
	} {
		if _, _, ok := logchain.SplitHash([]byte(bad)); ok {
			t.Errorf("%q split as a chained line", bad)
		}
	}
}

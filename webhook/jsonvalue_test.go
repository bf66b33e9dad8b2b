package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stdDecode is what decodeJSONObject must match: encoding/json with
// UseNumber, one value and nothing after it.
func stdDecode(data []byte) (any, error) {
	if !json.Valid(data) {
		return nil, errInvalid
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

var errInvalid = errors.New("invalid JSON")

func checkSameAsStd(t *testing.T, data []byte) {
	t.Helper()
	want, werr := stdDecode(data)
	got, gerr := decodeJSONObject(data)
	if werr == nil && want != nil {
		if _, ok := want.(map[string]any); !ok {
			if gerr == nil {
				t.Fatalf("%q: a %T was decoded as an object", data, want)
			}
			return
		}
	}
	switch {
	case werr != nil && gerr == nil:
		t.Fatalf("%q: accepted, encoding/json says %v", data, werr)
	case werr == nil && gerr != nil:
		t.Fatalf("%q: rejected (%v), encoding/json accepts it", data, gerr)
	case werr == nil:
		var g any = got
		if got == nil {
			g = nil
		}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Fatalf("%q: differs from encoding/json (-std +ours):\n%s", data, diff)
		}
	}
}

var jsonSeeds = []string{
	`{}`, `null`, ` {"a":1} `, `{"a":[1,2,{"b":null}],"c":true,"d":false}`,
	`{"n":[0,-0,1.5,-2e10,3E+2,4e-3,12345678901234567890123]}`,
	`{"s":"plain","e":"\"\\\/\b\f\n\r\t","u":"\u00e9\u4e2d\ud83d\ude00"}`,
	`{"lone":"\ud800","lone2":"\udc00x","bad pair":"\ud800\u0041","pair":"\uD83D\uDE00"}`,
	"{\"utf8\":\"h\xc3\xa9llo \xe4\xb8\xad\",\"bad\":\"\xff\xfe\",\"cut\":\"\xe4\xb8\"}",
	`{"dup":1,"dup":2}`, `{"a":1,}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`,
	`{"a":tru}`, `{"a":nul}`, `{"a":"x}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{a:1}`,
	`{"a":1}x`, `{"a":1} {}`, `[1,2]`, `"str"`, `12`, `true`, ``, ` `, `{`, `{"a"`, `{"a":`, `{"a":[`,
	`{"a":[1,]}`, `{"a":{"b":{"c":{}}}}`, `{"\u0000":"nul key"}`, `{"a":"\u00zz"}`,
}

func TestDecodeJSONObjectMatchesEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkSameAsStd(t, []byte(s))
	}
	pod, err := os.ReadFile("testdata/pod-create.json")
	if err != nil {
		t.Fatal(err)
	}
	checkSameAsStd(t, pod)
	deep := strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth)
	checkSameAsStd(t, []byte(deep))
	deeper := strings.Repeat(`{"a":[`, maxJSONDepth/2+1) + strings.Repeat("]}", maxJSONDepth/2+1)
	checkSameAsStd(t, []byte(deeper))
}

func FuzzDecodeJSONObject(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsStd(t, data)
		checkSkipAgrees(t, data)
	})
}

// checkSkipAgrees: data as an object's managedFields is an error left out
// exactly when it is an error built, and leaving it out changes nothing
// else.
func checkSkipAgrees(t *testing.T, data []byte) {
	t.Helper()
	body := append(append([]byte(`{"request":{"object":{"metadata":{"managedFields":`), data...), `,"name":"n"}}}}`...)
	full, errFull := decodeJSON(body, false)
	lean, errLean := decodeJSON(body, true)
	if (errFull == nil) != (errLean == nil) {
		t.Fatalf("%q: built: %v; left out: %v", data, errFull, errLean)
	}
	if errFull != nil {
		return
	}
	if req, ok := full["request"].(map[string]any); ok {
		if obj, ok := req["object"].(map[string]any); ok {
			if meta, ok := obj["metadata"].(map[string]any); ok {
				delete(meta, "managedFields")
			}
		}
	}
	if !reflect.DeepEqual(full, lean) {
		t.Fatalf("%q: built without managedFields %v, left out %v", data, full, lean)
	}
}

func TestSkipAgreesOnSeeds(t *testing.T) {
	for _, s := range jsonSeeds {
		checkSkipAgrees(t, []byte(s))
	}
}

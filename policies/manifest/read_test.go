package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"
)

// pos is what the structural tests compare about a Document.
type pos struct {
	Line  int
	Index int
	Kind  string
	Name  string
}

func positions(docs []Document) []pos {
	var out []pos
	for i := range docs {
		out = append(out, pos{Line: docs[i].Line, Index: docs[i].Index, Kind: docs[i].Kind(), Name: docs[i].Name()})
	}
	return out
}

// errStrings flattens a tree of joined errors into their messages, failing
// the test when a leaf is not an *Error with the expected file.
func errStrings(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var me *Error
		if !errors.As(e, &me) {
			t.Errorf("error %q is a %T, want *Error", e, e)
		}
		out = append(out, e.Error())
	}
	if err != nil {
		walk(err)
	}
	return out
}

// lines joins its arguments with newlines, so that a test input shows one
// line per argument and line numbers can be counted.
func lines(l ...string) string {
	return strings.Join(l, "\n") + "\n"
}

func TestRead(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		in       string
		want     []pos
		wantErrs []string
	}{
		{
			name: "multi-document YAML with comments and separator variants",
			in: lines(
				"# leading comment", // 1
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: a",
				"---", // 6
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: b",
				"--- # separator with a comment", // 11
				"# comment before content",
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata: {name: c}",
				"---   ", // 16: an empty document, ended by the marker below
				"...",
				"---",
				"apiVersion: v1", // 19
				"kind: ConfigMap",
				"metadata:",
				"  name: d",
				"...", // 23: end marker, then a bare document
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: e",
				"--- {apiVersion: v1, kind: ConfigMap, metadata: {name: f}}", // 28
				"---\t",
				"",
			),
			want: []pos{
				{Line: 2, Index: 0, Kind: "ConfigMap", Name: "a"},
				{Line: 7, Index: 1, Kind: "ConfigMap", Name: "b"},
				{Line: 13, Index: 2, Kind: "ConfigMap", Name: "c"},
				{Line: 19, Index: 4, Kind: "ConfigMap", Name: "d"},
				{Line: 24, Index: 5, Kind: "ConfigMap", Name: "e"},
				{Line: 28, Index: 6, Kind: "ConfigMap", Name: "f"},
			},
		},
		{
			name: "leading separator and CRLF line ends",
			in:   "---\r\napiVersion: v1\r\nkind: A\r\nmetadata:\r\n  name: x\r\n---\r\napiVersion: v1\r\nkind: B\r\n",
			want: []pos{
				{Line: 2, Index: 0, Kind: "A", Name: "x"},
				{Line: 7, Index: 1, Kind: "B"},
			},
		},
		{
			name: "helm template output",
			in:   helmOutput,
			want: []pos{
				{Line: 3, Index: 0, Kind: "ServiceAccount", Name: "app"},
				{Line: 15, Index: 2, Kind: "Service", Name: "app"},
				{Line: 27, Index: 3, Kind: "Deployment", Name: "app"},
			},
		},
		{
			name: "kustomize build output",
			in:   kustomizeOutput,
			want: []pos{
				{Line: 1, Index: 0, Kind: "Namespace", Name: "shop"},
				{Line: 6, Index: 1, Kind: "ConfigMap", Name: "shop-config-7fk2m8"},
				{Line: 14, Index: 2, Kind: "Deployment", Name: "shop-web"},
			},
		},
		{
			name: "separator-like lines that are content",
			in: lines(
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: a",
				"data:",
				"  script: |",
				"    echo ---",
				"     ---",
				"  note: ---x",
			),
			want: []pos{{Line: 1, Index: 0, Kind: "ConfigMap", Name: "a"}},
		},
		{
			name: "YAML List with items",
			in: lines(
				"apiVersion: v1",
				"kind: List",
				"items:",
				"- apiVersion: v1", // 4
				"  kind: Service",
				"  metadata:",
				"    name: s",
				"-", // 8
				"  apiVersion: apps/v1",
				"  kind: Deployment",
				"  metadata: {name: d}",
			),
			want: []pos{
				{Line: 4, Index: 0, Kind: "Service", Name: "s"},
				{Line: 9, Index: 0, Kind: "Deployment", Name: "d"},
			},
		},
		{
			name: "typed list items take kind and apiVersion from the list",
			in: lines(
				"apiVersion: apps/v1",
				"kind: DeploymentList",
				"items:",
				"- metadata: {name: a}",
				"- metadata: {name: b}",
			),
			want: []pos{
				{Line: 4, Index: 0, Kind: "Deployment", Name: "a"},
				{Line: 5, Index: 0, Kind: "Deployment", Name: "b"},
			},
		},
		{
			name: "a kind ending in List without items is an ordinary object",
			in:   lines("apiVersion: example.com/v1", "kind: AllowList", "spec: {}"),
			want: []pos{{Line: 1, Index: 0, Kind: "AllowList"}},
		},
		{
			name: "empty List",
			in:   lines("apiVersion: v1", "kind: List", "items: []", "---", "apiVersion: v1", "kind: List"),
		},
		{
			name: "nested List",
			in: lines(
				"apiVersion: v1",
				"kind: List",
				"items:",
				"- apiVersion: v1",
				"  kind: List",
				"  items:",
				"  - {apiVersion: v1, kind: Pod, metadata: {name: p}}",
			),
			want: []pos{{Line: 7, Index: 0, Kind: "Pod", Name: "p"}},
		},
		{
			name: "JSON object",
			file: "pod.json",
			in: lines(
				"{",
				`  "apiVersion": "v1",`,
				`  "kind": "Pod",`,
				`  "metadata": {"name": "p", "annotations": {"url": "http:\/\/example.com"}}`,
				"}",
			),
			want: []pos{{Line: 1, Index: 0, Kind: "Pod", Name: "p"}},
		},
		{
			name: "JSON stream of objects",
			file: "stream.json",
			in:   lines(`{"apiVersion":"v1","kind":"A"}`, "", `  {"apiVersion":"v1",`, `"kind":"B"}{"apiVersion":"v1","kind":"C"}`),
			want: []pos{
				{Line: 1, Index: 0, Kind: "A"},
				{Line: 3, Index: 1, Kind: "B"},
				{Line: 4, Index: 2, Kind: "C"},
			},
		},
		{
			name: "JSON List",
			file: "list.json",
			in: lines(
				"{",
				`  "apiVersion": "v1",`,
				`  "kind": "List",`,
				`  "items": [`,
				`    {`, // 5
				`      "apiVersion": "v1",`,
				`      "kind": "Service",`,
				`      "metadata": {"name": "s"}`,
				`    },`,
				`    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}`, // 10
				`  ]`,
				"}",
			),
			want: []pos{
				{Line: 5, Index: 0, Kind: "Service", Name: "s"},
				{Line: 10, Index: 0, Kind: "Pod", Name: "p"},
			},
		},
		{
			name: "unicode labels",
			in: lines(
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: ünïcode",
				"  labels:",
				"    app.kubernetes.io/name: café",
				"    日本: 値",
				"    emoji: \"\U0001F680\"",
			),
			want: []pos{{Line: 1, Index: 0, Kind: "ConfigMap", Name: "ünïcode"}},
		},
		{
			name: "byte order mark",
			in:   "\ufeffapiVersion: v1\nkind: A\n",
			want: []pos{{Line: 1, Index: 0, Kind: "A"}},
		},
		{name: "empty file", in: ""},
		{name: "whitespace only", in: "\n  \n\t\n"},
		{name: "comments only", in: lines("# Source: chart/templates/a.yaml", "  # indented comment")},
		{name: "separators and comments only", in: lines("---", "# Source: chart/templates/a.yaml", "---", "...", "---")},
		{
			name: "malformed YAML: bad indentation",
			in: lines(
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: x",
				"---",
				"apiVersion: v1",
				"kind: Pod",
				"metadata:",
				"  name: bad",
				"spec:",
				"  containers:",
				"  - name: a",
				"    image: b",
				"   ports: []", // 14
				"---",
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  name: z",
			),
			want: []pos{
				{Line: 1, Index: 0, Kind: "ConfigMap", Name: "x"},
				{Line: 16, Index: 2, Kind: "ConfigMap", Name: "z"},
			},
			wantErrs: []string{"f.yaml:14: invalid YAML: did not find expected key"},
		},
		{
			name:     "malformed YAML: mapping value in a plain scalar",
			in:       lines("# Source: x", "apiVersion: v1", "kind: Pod", "metadata:", "  name: a: b"),
			wantErrs: []string{"f.yaml:5: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name:     "malformed YAML: unclosed quote is reported where it opens",
			in:       lines("apiVersion: v1", "kind: Pod", "metadata:", "  name: 'x", "  labels: {}"),
			wantErrs: []string{"f.yaml:4: invalid YAML: found unexpected end of stream"},
		},
		{
			name:     "malformed YAML: tab indentation",
			in:       lines("apiVersion: v1", "kind: Pod", "metadata:", "\tname: x"),
			wantErrs: []string{"f.yaml:4: invalid YAML: found character that cannot start any token"},
		},
		{
			name:     "malformed YAML: unknown alias",
			in:       lines("apiVersion: v1", "kind: Pod", "spec: *missing"),
			wantErrs: []string{"f.yaml:3: invalid YAML: unknown anchor 'missing' referenced"},
		},
		{
			name:     "content after the end of a document",
			in:       lines("# flow mappings are YAML unless the file starts with {", "{apiVersion: v1, kind: A}", "{apiVersion: v1, kind: B}"),
			wantErrs: []string{`f.yaml:3: invalid YAML: content after the end of the document; separate documents with a line "---"`},
		},
		{
			name: "malformed JSON",
			file: "bad.json",
			in:   lines("{", `  "apiVersion": "v1",`, `  "kind": "Pod",`, `  "metadata": {"name": "p",}`, "}"),
			wantErrs: []string{
				`bad.json:4: invalid JSON (read as JSON because the file starts with "{"): invalid character '}' looking for beginning of object key string`,
			},
		},
		{
			name: "truncated JSON",
			file: "bad.json",
			in:   lines("{", `  "apiVersion": "v1",`, `  "kind": "Pod"`),
			wantErrs: []string{
				`bad.json:3: invalid JSON (read as JSON because the file starts with "{"): unexpected end of input: an object or list is not closed`,
			},
		},
		{
			name: "JSON stream with a value that is not an object",
			file: "s.json",
			in:   lines(`{"apiVersion":"v1","kind":"A"}`, `[{"apiVersion":"v1","kind":"B"}]`, `{"apiVersion":"v1","kind":"C"}`),
			want: []pos{{Line: 1, Index: 0, Kind: "A"}, {Line: 3, Index: 2, Kind: "C"}},
			wantErrs: []string{
				`s.json:2: JSON value is a list, not an object; a Kubernetes object is an object with apiVersion and kind; to hold several objects use "---" separators or a kind: List object with items`,
			},
		},
		{
			name: "top-level scalar, list and null",
			in:   lines("just a string", "---", "- apiVersion: v1", "  kind: Pod", "---", "~", "---", "42"),
			wantErrs: []string{
				"f.yaml:1: document is a string, not a mapping; a Kubernetes object is a mapping with apiVersion and kind",
				`f.yaml:3: document is a list, not a mapping; a Kubernetes object is a mapping with apiVersion and kind; to hold several objects use "---" separators or a kind: List object with items`,
				"f.yaml:6: document is null, not a mapping; a Kubernetes object is a mapping with apiVersion and kind",
				"f.yaml:8: document is a number, not a mapping; a Kubernetes object is a mapping with apiVersion and kind",
			},
		},
		{
			// YAML ends a line at a lone "\r" and at NEL, LS and PS; the
			// user's editor and grep do not, so lines are counted at "\n".
			name: "YAML line breaks that are not newlines",
			in:   "\r0\n---\napiVersion: v1\rkind: Pod\u2028metadata:\u0085  name: a\r  name: b\r\n---\n\u2029- x\n",
			wantErrs: []string{
				"f.yaml:1: document is a number, not a mapping; a Kubernetes object is a mapping with apiVersion and kind",
				`f.yaml:3: duplicate key "name" (first at line 3): kubectl keeps only the last value; remove one`,
				`f.yaml:5: document is a list, not a mapping; a Kubernetes object is a mapping with apiVersion and kind; to hold several objects use "---" separators or a kind: List object with items`,
			},
		},
		{
			name: "missing kind, apiVersion or both",
			in: lines(
				"apiVersion: v1",
				"metadata: {name: a}",
				"---",
				"# values.yaml",
				"kind: Pod",
				"---",
				"replicas: 3",
				"---",
				"apiVersion: v1",
				`kind: ""`,
				"---",
				"apiVersion: v1",
				"kind: 7",
				"---",
				"apiVersion: [v1]",
				"kind: Pod",
			),
			wantErrs: []string{
				`f.yaml:1: missing "kind": this is not a Kubernetes object (apiVersion is "v1")`,
				`f.yaml:5: missing "apiVersion": this is not a Kubernetes object (kind is "Pod")`,
				`f.yaml:7: missing "apiVersion" and "kind": this is not a Kubernetes object`,
				`f.yaml:9: missing "kind": this is not a Kubernetes object (apiVersion is "v1")`,
				`f.yaml:12: "kind" must be a string, not a number`,
				`f.yaml:15: "apiVersion" must be a string, not a list`,
			},
		},
		{
			name: "bad List items",
			in: lines(
				"apiVersion: v1",
				"kind: List",
				"items: {a: 1}", // 3
				"---",
				"apiVersion: v1",
				"kind: List",
				"items:",
				"- apiVersion: v1", // 8
				"  kind: Pod",
				"  metadata: {name: ok}",
				"- metadata: {name: nokind}", // 11
				"- just a string",
				"- apiVersion: v1",
				"  kind: List",
				"  items: [{kind: Pod}]", // 15
			),
			want: []pos{{Line: 8, Index: 1, Kind: "Pod", Name: "ok"}},
			wantErrs: []string{
				`f.yaml:3: "items" of a List must be a list, not an object`,
				`f.yaml:11: items[1]: missing "apiVersion" and "kind": this is not a Kubernetes object`,
				`f.yaml:12: items[2]: a List item must be an object, not a string`,
				`f.yaml:15: items[3]: items[0]: missing "apiVersion": this is not a Kubernetes object (kind is "Pod")`,
			},
		},
		{
			name: "duplicate keys",
			in: lines(
				"apiVersion: v1",
				"kind: Pod",
				"metadata:",
				"  name: a",
				"spec:",
				"  containers:",
				"  - name: c",
				"    securityContext:",
				"      privileged: false",
				"      privileged: true", // 10
				"---",
				"apiVersion: v1",
				"kind: ConfigMap",
				"metadata:",
				"  labels:",
				"    on: a",
				"    true: b", // 17: the same key once YAML 1.1 booleans are read
				"  <<: {name: x}",
				"  <<: {namespace: y}",
			),
			wantErrs: []string{
				`f.yaml:10: duplicate key "privileged" (first at line 9): kubectl keeps only the last value; remove one`,
				`f.yaml:17: duplicate key "true" (first at line 16): kubectl keeps only the last value; remove one`,
			},
		},
		{
			name: "duplicate keys in JSON",
			file: "d.json",
			in:   lines(`{"apiVersion": "v1", "kind": "Pod",`, `"kind": "Secret"}`),
			wantErrs: []string{
				`d.json:2: duplicate key "kind" (first at line 1): kubectl keeps only the last value; remove one`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "f.yaml"
			}
			docs, err := Read(file, strings.NewReader(tt.in), Options{})
			if diff := cmp.Diff(tt.want, positions(docs)); diff != "" {
				t.Errorf("documents (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantErrs, errStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			for _, d := range docs {
				if d.File != file {
					t.Errorf("File = %q, want %q", d.File, file)
				}
			}
		})
	}
}

const helmOutput = `---
# Source: app/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  labels:
    helm.sh/chart: app-1.0.0
    app.kubernetes.io/managed-by: Helm
---
# Source: app/templates/hpa.yaml
---
# Source: app/templates/service.yaml
# generated by helm
apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  type: ClusterIP
  ports:
    - port: 80
      targetPort: http
---
# Source: app/templates/deployment.yaml

apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: app
          image: "nginx:1.25"
          securityContext:
            privileged: false
---
# Source: app/templates/tests/test-connection.yaml
# this template is disabled
`

const kustomizeOutput = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
data:
  LOG_LEVEL: info
kind: ConfigMap
metadata:
  name: shop-config-7fk2m8
  namespace: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: web
  name: shop-web
  namespace: shop
spec:
  template:
    spec:
      containers:
      - envFrom:
        - configMapRef:
            name: shop-config-7fk2m8
        image: shop/web:1.2.3
        name: web
`

// TestReadAgreesWithYAMLStream checks lines and indexes against yaml.v3
// decoding the whole stream at once, which numbers lines and documents
// itself: the split into documents must not shift either.
func TestReadAgreesWithYAMLStream(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "helm", in: helmOutput},
		{name: "kustomize", in: kustomizeOutput},
		{name: "empty documents", in: lines("---", "---", "# c", "apiVersion: v1", "kind: A", "---", "", "---", "apiVersion: v1", "kind: B")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []pos
			dec := yaml.NewDecoder(strings.NewReader(tt.in))
			for i := 0; ; i++ {
				var n yaml.Node
				err := dec.Decode(&n)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var obj struct {
					Kind     string
					Metadata struct{ Name string }
				}
				if err := n.Decode(&obj); err != nil {
					t.Fatal(err)
				}
				if obj.Kind != "" {
					want = append(want, pos{Line: n.Content[0].Line, Index: i, Kind: obj.Kind, Name: obj.Metadata.Name})
				}
			}
			docs, err := Read("f.yaml", strings.NewReader(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, positions(docs)); diff != "" {
				t.Errorf("documents (-yaml.v3 +Read):\n%s", diff)
			}
		})
	}
}

func TestReadValues(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		in       string
		want     []map[string]any
		wantErrs []string
	}{
		{
			name: "YAML 1.1 booleans and numbers, as kubectl reads them",
			in: lines(
				"apiVersion: v1",
				"kind: Pod",
				"metadata:",
				"  name: p",
				"  labels:",
				"    on: x", // a YAML 1.1 boolean key
				`    version: "1.10"`,
				"spec:",
				"  hostNetwork: yes",
				"  containers:",
				"  - name: c",
				"    securityContext:",
				"      privileged: On",
				"      allowPrivilegeEscalation: n",
				"      runAsUser: 1000",
				`      readOnlyRootFilesystem: "yes"`,
				"    resources:",
				"      limits: {cpu: 1.5, memory: 1e3, big: 12345678901234567890, hex: 0x10}",
				"    volumeMounts: [{name: v, mode: 0644}]",
				"    args: [~, null, '']",
			),
			want: []map[string]any{{
				"apiVersion": "v1",
				"kind":       "Pod",
				"metadata": map[string]any{
					"name":   "p",
					"labels": map[string]any{"true": "x", "version": "1.10"},
				},
				"spec": map[string]any{
					"hostNetwork": true,
					"containers": []any{map[string]any{
						"name": "c",
						"securityContext": map[string]any{
							"privileged":               true,
							"allowPrivilegeEscalation": false,
							"runAsUser":                json.Number("1000"),
							"readOnlyRootFilesystem":   "yes",
						},
						"resources": map[string]any{"limits": map[string]any{
							"cpu":    json.Number("1.5"),
							"memory": json.Number("1000"),
							"big":    json.Number("12345678901234567890"),
							"hex":    json.Number("16"),
						}},
						// YAML 1.1 reads a leading 0 as octal, as in defaultMode: 0644.
						"volumeMounts": []any{map[string]any{"name": "v", "mode": json.Number("420")}},
						"args":         []any{nil, nil, ""},
					}},
				},
			}},
		},
		{
			name: "JSON keeps numbers as written",
			file: "f.json",
			in:   `{"apiVersion": "v1", "kind": "X", "a": 1.0, "b": 1e3, "c": -0.5, "d": true, "e": null, "f": "\u00e9\/"}`,
			want: []map[string]any{{
				"apiVersion": "v1", "kind": "X",
				"a": json.Number("1.0"), "b": json.Number("1e3"), "c": json.Number("-0.5"),
				"d": true, "e": nil, "f": "é/",
			}},
		},
		{
			name: "YAML aliases and merge keys are expanded",
			in: lines(
				"apiVersion: v1",
				"kind: X",
				"base: &b {a: 1, b: 2}",
				"merged:",
				"  <<: *b",
				"  b: 3",
				"copy: *b",
			),
			want: []map[string]any{{
				"apiVersion": "v1", "kind": "X",
				"base":   map[string]any{"a": json.Number("1"), "b": json.Number("2")},
				"merged": map[string]any{"a": json.Number("1"), "b": json.Number("3")},
				"copy":   map[string]any{"a": json.Number("1"), "b": json.Number("2")},
			}},
		},
		{
			name: "typed list items get kind and apiVersion",
			in:   lines("apiVersion: apps/v1", "kind: DeploymentList", "items:", "- metadata: {name: a}", "- {kind: Other, metadata: {name: b}}"),
			want: []map[string]any{
				{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "a"}},
			},
			// The second item names a kind but no apiVersion: an error, not a guess.
			wantErrs: []string{`f.yaml:5: items[1]: missing "apiVersion": this is not a Kubernetes object (kind is "Other")`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "f.yaml"
			}
			docs, err := Read(file, strings.NewReader(tt.in), Options{})
			var got []map[string]any
			for _, d := range docs {
				got = append(got, d.Object)
			}
			if diff := cmp.Diff(tt.wantErrs, errStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDocumentAccessors(t *testing.T) {
	docs, err := Read("f.yaml", strings.NewReader(lines(
		"apiVersion: apps/v1",
		"kind: Deployment",
		"metadata: {name: web, namespace: shop}",
		"---",
		"apiVersion: v1",
		"kind: Pod",
		"metadata: {generateName: x-, namespace: [not, a, string]}",
	)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	type acc struct{ APIVersion, Kind, Name, Namespace string }
	var got []acc
	for _, d := range docs {
		got = append(got, acc{d.APIVersion(), d.Kind(), d.Name(), d.Namespace()})
	}
	want := []acc{{"apps/v1", "Deployment", "web", "shop"}, {"v1", "Pod", "", ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accessors (-want +got):\n%s", diff)
	}
}

func TestLineOf(t *testing.T) {
	const podYAML = `# leading comment
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels:
    on: x
spec:
  containers:
  - name: a
    image: a
  - name: b
    image: b
    securityContext:
      privileged: true
  volumes: &vols
  - name: data
    emptyDir: {}
  extra: *vols
`
	const listYAML = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: first}
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: second
  data:
    key: value
`
	const podJSON = `{
  "apiVersion": "v1",
  "kind": "Pod",
  "spec": {
    "containers": [
      {"name": "a"},
      {
        "name": "b",
        "securityContext": {"privileged": true}
      }
    ]
  }
}
`
	tests := []struct {
		name string
		file string
		in   string
		doc  int
		path []any
		want int
	}{
		{name: "empty path is the object's line", in: podYAML, path: nil, want: 2},
		{name: "top-level field", in: podYAML, path: []any{"spec"}, want: 8},
		{name: "nested field", in: podYAML, path: []any{"spec", "containers", 1, "securityContext", "privileged"}, want: 15},
		{name: "list index", in: podYAML, path: []any{"spec", "containers", 1}, want: 12},
		{name: "int64 index", in: podYAML, path: []any{"spec", "containers", int64(1), "image"}, want: 13},
		{name: "float64 index", in: podYAML, path: []any{"spec", "containers", float64(1), "image"}, want: 13},
		{name: "json.Number index", in: podYAML, path: []any{"spec", "containers", json.Number("1"), "image"}, want: 13},
		{name: "missing field is its parent's line", in: podYAML, path: []any{"spec", "containers", 0, "securityContext", "privileged"}, want: 10},
		{name: "index out of range", in: podYAML, path: []any{"spec", "containers", 5, "image"}, want: 9},
		{name: "negative index", in: podYAML, path: []any{"spec", "containers", -1}, want: 9},
		{name: "fractional index", in: podYAML, path: []any{"spec", "containers", 0.5}, want: 9},
		{name: "key into a list", in: podYAML, path: []any{"spec", "containers", "name"}, want: 9},
		{name: "index into a map", in: podYAML, path: []any{"spec", 0}, want: 8},
		{name: "below a scalar", in: podYAML, path: []any{"metadata", "name", "deeper"}, want: 5},
		{name: "unsupported path element", in: podYAML, path: []any{"spec", true}, want: 8},
		{name: "YAML 1.1 boolean key", in: podYAML, path: []any{"metadata", "labels", "true"}, want: 7},
		{name: "through an alias", in: podYAML, path: []any{"spec", "extra", 0, "emptyDir"}, want: 18},
		{name: "first list item", in: listYAML, doc: 0, path: []any{"metadata", "name"}, want: 6},
		{name: "second list item", in: listYAML, doc: 1, path: []any{"data", "key"}, want: 12},
		{name: "list item missing field", in: listYAML, doc: 1, path: []any{"spec"}, want: 7},
		{name: "JSON nested field", file: "p.json", in: podJSON, path: []any{"spec", "containers", 1, "securityContext", "privileged"}, want: 9},
		{name: "JSON list index", file: "p.json", in: podJSON, path: []any{"spec", "containers", 1}, want: 7},
		{name: "JSON missing field", file: "p.json", in: podJSON, path: []any{"spec", "containers", 0, "image"}, want: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "f.yaml"
			}
			docs, err := Read(file, strings.NewReader(tt.in), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := docs[tt.doc].LineOf(tt.path); got != tt.want {
				t.Errorf("LineOf(%v) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

func TestLineOfWithoutPositions(t *testing.T) {
	d := Document{Line: 7, Object: map[string]any{"spec": map[string]any{}}}
	if got := d.LineOf([]any{"spec"}); got != 7 {
		t.Errorf("LineOf on a Document without node = %d, want its Line 7", got)
	}
}

func TestReadLarge(t *testing.T) {
	t.Run("3 MiB document", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n")
		value := strings.Repeat("x", 1020)
		const keys = 3 * 1024
		for i := range keys {
			fmt.Fprintf(&b, "  k%05d: %s\n", i, value)
		}
		if b.Len() < 3<<20 {
			t.Fatalf("generated %d bytes, want at least 3 MiB", b.Len())
		}
		docs, err := Read("big.yaml", strings.NewReader(b.String()), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != 1 {
			t.Fatalf("got %d documents, want 1", len(docs))
		}
		data, _ := docs[0].Object["data"].(map[string]any)
		if len(data) != keys {
			t.Errorf("data has %d keys, want %d", len(data), keys)
		}
		if got, want := docs[0].LineOf([]any{"data", "k03071"}), 6+3071; got != want {
			t.Errorf("LineOf(data.k03071) = %d, want %d", got, want)
		}
	})
	t.Run("5000 containers", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("apiVersion: v1\nkind: Pod\nmetadata:\n  name: wide\nspec:\n  containers:\n")
		const n = 5000
		for i := range n {
			fmt.Fprintf(&b, "  - name: c%d\n    image: registry.example.com/app:%d\n    securityContext:\n      privileged: false\n", i, i)
		}
		docs, err := Read("wide.yaml", strings.NewReader(b.String()), Options{})
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := docs[0].Object["spec"].(map[string]any)
		containers, _ := spec["containers"].([]any)
		if len(containers) != n {
			t.Fatalf("got %d containers, want %d", len(containers), n)
		}
		// Container i starts on line 7+4i; privileged is 3 lines below.
		if got, want := docs[0].LineOf([]any{"spec", "containers", 4999, "securityContext", "privileged"}), 7+4*4999+3; got != want {
			t.Errorf("LineOf(last container privileged) = %d, want %d", got, want)
		}
	})
}

func TestReadNesting(t *testing.T) {
	deep := func(open, close string, n int, sep string) string {
		return strings.Repeat(open+sep, n) + "1" + strings.Repeat(close, n)
	}
	tests := []struct {
		name     string
		file     string
		in       string
		opts     Options
		wantErrs []string
	}{
		{
			name:     "10,000 nested JSON objects, one per line",
			file:     "deep.json",
			in:       `{"apiVersion": "v1", "kind": "X", "a":` + deep(`{"a":`, "}", 10000, "\n") + "}",
			wantErrs: []string{"deep.json:100: nesting is deeper than 100 levels"},
		},
		{
			name:     "10,000 nested JSON arrays",
			file:     "deep.json",
			in:       `{"apiVersion": "v1", "kind": "X", "a":` + deep("[", "]", 10000, "") + "}",
			wantErrs: []string{"deep.json:1: nesting is deeper than 100 levels"},
		},
		{
			name:     "10,000 nested YAML flow lists",
			in:       "apiVersion: v1\nkind: X\na: " + deep("[", "]", 10000, "") + "\n",
			wantErrs: []string{"f.yaml:3: nesting is deeper than 100 levels"},
		},
		{
			name:     "10,000 nested YAML flow lists at the top level",
			in:       deep("[", "]", 10000, "") + "\n",
			wantErrs: []string{"f.yaml:1: nesting is deeper than 100 levels"},
		},
		{
			name:     "nesting beyond the YAML parser's own limit",
			in:       "a: " + deep("[", "]", 20000, "") + "\n",
			wantErrs: []string{"f.yaml:1: invalid YAML: exceeded max depth of 10000"},
		},
		{
			name:     "nested block mappings",
			in:       blockNesting(150),
			wantErrs: []string{"f.yaml:103: nesting is deeper than 100 levels"},
		},
		{
			name: "exactly at the limit",
			in:   "apiVersion: v1\nkind: X\na: " + deep("[", "]", 99, "") + "\n",
		},
		{
			name:     "one past the limit",
			in:       "apiVersion: v1\nkind: X\na: " + deep("[", "]", 100, "") + "\n",
			wantErrs: []string{"f.yaml:3: nesting is deeper than 100 levels"},
		},
		{
			name:     "a lower MaxDepth",
			in:       "apiVersion: v1\nkind: X\na: {b: {c: 1}}\n",
			opts:     Options{MaxDepth: 2},
			wantErrs: []string{"f.yaml:3: nesting is deeper than 2 levels"},
		},
		{
			name:     "depth gained through aliases",
			in:       "apiVersion: v1\nkind: X\na: &a " + deep("[", "]", 60, "") + "\nb: " + deep("[", "]", 60, "")[:60] + "*a" + strings.Repeat("]", 60) + "\n",
			wantErrs: []string{"f.yaml:1: nesting is deeper than 100 levels once YAML aliases are expanded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "f.yaml"
			}
			docs, err := Read(file, strings.NewReader(tt.in), tt.opts)
			if diff := cmp.Diff(tt.wantErrs, errStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if wantDocs := len(tt.wantErrs) == 0; wantDocs != (len(docs) == 1) {
				t.Errorf("got %d documents, want 1 exactly when there is no error", len(docs))
			}
		})
	}
}

// blockNesting returns a document whose mappings nest n levels deep in
// block style, one level per line: the mapping at depth d starts on line
// d+2 (the root mapping, depth 1, on line 1).
func blockNesting(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: X\n")
	for i := range n {
		fmt.Fprintf(&b, "%sa:\n", strings.Repeat(" ", i))
	}
	fmt.Fprintf(&b, "%sb: 1\n", strings.Repeat(" ", n))
	return b.String()
}

func TestReadLimits(t *testing.T) {
	obj := "apiVersion: v1\nkind: A\n" // 23 bytes
	tests := []struct {
		name     string
		in       string
		opts     Options
		wantDocs int
		wantErrs []string
	}{
		{name: "at the size limit", in: obj, opts: Options{MaxFileBytes: int64(len(obj))}, wantDocs: 1},
		{
			name:     "over the size limit",
			in:       obj + "\n",
			opts:     Options{MaxFileBytes: int64(len(obj))},
			wantErrs: []string{"f.yaml: file is larger than the 23 bytes limit; split it or raise the limit"},
		},
		{
			name:     "over a limit in MiB",
			in:       strings.Repeat("#", 1<<20+1),
			opts:     Options{MaxFileBytes: 1 << 20},
			wantErrs: []string{"f.yaml: file is larger than the 1 MiB limit; split it or raise the limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Read("f.yaml", strings.NewReader(tt.in), tt.opts)
			if len(docs) != tt.wantDocs {
				t.Errorf("got %d documents, want %d", len(docs), tt.wantDocs)
			}
			if diff := cmp.Diff(tt.wantErrs, errStrings(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadStopsAfterManyErrors(t *testing.T) {
	in := strings.Repeat("---\nnot: an object\n", 1000) + "---\napiVersion: v1\nkind: A\n"
	_, err := Read("f.yaml", strings.NewReader(in), Options{})
	got := errStrings(t, err)
	if len(got) != maxErrorsPerFile+1 {
		t.Fatalf("got %d errors, want %d", len(got), maxErrorsPerFile+1)
	}
	if want := "f.yaml:200: too many errors (100); the rest of the file was not read"; got[len(got)-1] != want {
		t.Errorf("last error = %q, want %q", got[len(got)-1], want)
	}
}

func TestReadErrors(t *testing.T) {
	t.Run("invalid options", func(t *testing.T) {
		for _, opts := range []Options{{MaxFileBytes: -1}, {MaxDepth: -1}, {Ignore: []string{"["}}} {
			if _, err := Read("f.yaml", strings.NewReader(""), opts); err == nil {
				t.Errorf("Read with %+v: no error", opts)
			}
		}
	})
	t.Run("reader failure", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := Read("f.yaml", io.MultiReader(strings.NewReader("a: 1\n"), errReader{boom}), Options{})
		if !errors.Is(err, boom) || err.Error() != "reading f.yaml: boom" {
			t.Errorf("err = %v, want reading f.yaml: boom", err)
		}
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "a.yaml", Line: 12, Msg: "bad"}, "a.yaml:12: bad"},
		{Error{File: "a.yaml", Msg: "too big"}, "a.yaml: too big"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDocumentsCompare shows the whole Document for a small input, so that a
// change in any exported field is noticed.
func TestDocumentsCompare(t *testing.T) {
	docs, err := Read("dir/a.yaml", strings.NewReader("---\n# Source: x\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Document{{
		File:   "dir/a.yaml",
		Line:   3,
		Index:  0,
		Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "ns"}},
	}}
	if diff := cmp.Diff(want, docs, cmpopts.IgnoreUnexported(Document{})); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
}

func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		"",
		helmOutput,
		kustomizeOutput,
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod}\n",
		`{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Pod"}]}`,
		"a: &a [*a]\n",
		"--- |\n  text\n...\n---\n- [[[\n",
		"apiVersion: v1\nkind: A\nx: &x {a: 1}\ny: {<<: *x}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Read("fuzz.yaml", bytes.NewReader(data), Options{})
		total := bytes.Count(data, []byte("\n")) + 1
		for _, d := range docs {
			if d.Kind() == "" || d.APIVersion() == "" {
				t.Errorf("document without kind or apiVersion: %v", d.Object)
			}
			if d.Line < 1 || d.Line > total {
				t.Errorf("Line %d outside the input's %d lines", d.Line, total)
			}
			for _, p := range [][]any{nil, {"metadata", "name"}, {"items", 0}, {"spec", "containers", 0, "image"}} {
				if l := d.LineOf(p); l < 1 || l > total {
					t.Errorf("LineOf(%v) = %d outside the input's %d lines", p, l, total)
				}
			}
		}
		for _, e := range errStrings(t, err) {
			if !strings.HasPrefix(e, "fuzz.yaml") {
				t.Errorf("error %q does not name the file", e)
			}
		}
	})
}

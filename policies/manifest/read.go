package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// Read reads one stream of manifests: YAML documents separated by "---", or,
// when the stream starts with "{", a sequence of JSON objects (as kubectl
// decides). name is used in Document.File and in errors as it is given.
//
// Read returns the objects that parsed, in order, and all problems joined
// with errors.Join: each malformed document is an *Error, and one bad
// document does not hide the others. A stream with no objects at all (empty,
// or only comments and separators) returns neither documents nor an error;
// whether that is a problem is the caller's decision.
func Read(name string, r io.Reader, opts Options) ([]Document, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	docs, errs := read(name, r, opts.withDefaults())
	return docs, errors.Join(errs...)
}

// read is Read with defaults applied, returning the errors unjoined so that
// Load can join the errors of all files into one flat list.
func read(name string, r io.Reader, opts Options) ([]Document, []error) {
	limit := opts.MaxFileBytes
	if limit < math.MaxInt64 {
		limit++ // read one byte more to tell "at the limit" from "over it"
	}
	data, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, []error{fmt.Errorf("reading %s: %w", name, err)}
	}
	if int64(len(data)) > opts.MaxFileBytes {
		return nil, []error{&Error{File: name, Msg: fmt.Sprintf(
			"file is larger than the %s limit; split it or raise the limit", formatBytes(opts.MaxFileBytes))}}
	}
	p := &parser{file: name, opts: opts}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if isJSON(data) {
		p.readJSON(data)
	} else {
		p.readYAML(data)
	}
	return p.docs, p.errs
}

// isJSON reports whether a stream is JSON the way kubectl's decoder decides
// it: the first non-space byte is "{". Anything else is YAML.
func isJSON(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// parser holds what reading one stream produces.
type parser struct {
	file    string
	opts    Options
	docs    []Document
	errs    []error
	stopped bool // too many errors: give up on the rest of the stream
}

func (p *parser) fail(line int, format string, args ...any) {
	if p.stopped {
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
	if len(p.errs) >= maxErrorsPerFile {
		p.errs = append(p.errs, &Error{File: p.file, Line: line,
			Msg: fmt.Sprintf("too many errors (%d); the rest of the file was not read", len(p.errs))})
		p.stopped = true
	}
}

// chunk is one YAML document's text, cut out of the stream.
type chunk struct {
	data     []byte
	line     int  // absolute line of data's first line
	explicit bool // started by a "---" marker, so it is a document even if empty
}

// readYAML cuts the stream into documents and decodes each. Splitting the
// stream ourselves, rather than letting a parser iterate over documents,
// makes the yaml.v3 parse (for lines) and the sigs.k8s.io/yaml parse (for
// values) see exactly the same text, and gives each document's first line.
func (p *parser) readYAML(data []byte) {
	index := 0
	splitYAML(data, func(c chunk) bool {
		if !hasContent(c.data) {
			if c.explicit {
				index++ // "---" followed by nothing is an empty document
			}
			return true
		}
		p.yamlDocument(c, index)
		index++
		return !p.stopped
	})
}

// splitYAML calls fn with each document of a YAML stream, in order, until fn
// returns false. A line that is "---" or "..." alone, or followed by spaces
// and a comment, separates documents and belongs to neither. A "---" line
// followed by content ("--- {a: 1}") starts a document and stays in it.
// YAML treats these markers at the start of a line as the end of the
// document wherever they occur, so the cut agrees with both parsers.
func splitYAML(data []byte, fn func(chunk) bool) {
	start, startLine, explicit := 0, 1, false
	lineNo := 1
	for pos := 0; pos < len(data); lineNo++ {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += pos
			next = end + 1
		}
		marker, hasRest := docMarker(bytes.TrimSuffix(data[pos:end], []byte("\r")))
		switch marker {
		case "---":
			if !fn(chunk{data: data[start:pos], line: startLine, explicit: explicit}) {
				return
			}
			if hasRest {
				start, startLine = pos, lineNo
			} else {
				start, startLine = next, lineNo+1
			}
			explicit = true
		case "...":
			if !fn(chunk{data: data[start:pos], line: startLine, explicit: explicit}) {
				return
			}
			start, startLine, explicit = next, lineNo+1, false
		}
		pos = next
	}
	fn(chunk{data: data[start:], line: startLine, explicit: explicit})
}

// docMarker reports whether line is a document marker ("---" or "...") and
// whether content other than a comment follows it on the line. A marker must
// be followed by the end of the line or a space or tab; "---x" is content.
func docMarker(line []byte) (marker string, hasRest bool) {
	if len(line) < 3 {
		return "", false
	}
	m := string(line[:3])
	if m != "---" && m != "..." {
		return "", false
	}
	rest := line[3:]
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	rest = bytes.TrimSpace(rest)
	hasRest = len(rest) > 0 && rest[0] != '#'
	if m == "..." && hasRest {
		return "", false // not a valid end marker; let the parser complain
	}
	return m, hasRest
}

// hasContent reports whether a document holds more than blank lines and
// comments; helm emits such documents for templates that render to nothing.
func hasContent(data []byte) bool {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimLeft(line, " \t\r")
		if len(line) > 0 && line[0] != '#' {
			return true
		}
	}
	return false
}

// yamlDocument decodes one YAML document.
func (p *parser) yamlDocument(c chunk, index int) {
	lines := newLineMap(c.data, c.line)
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(c.data))
	errV3 := dec.Decode(&doc)
	if errV3 == nil {
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			// kubectl would silently drop whatever follows the first
			// document here; say so instead.
			line := c.line
			if err != nil {
				line, _, _ = yamlErrorLine(err.Error(), c)
			} else if len(extra.Content) > 0 {
				line = lines.abs(extra.Content[0].Line)
			}
			p.fail(line, `invalid YAML: content after the end of the document; separate documents with a line "---"`)
			return
		}
	}
	if errV3 != nil {
		// Prefer the message of the decoder of record: it is what kubectl
		// would say, and it places errors at the problem where yaml.v3
		// places them at the start of the enclosing block. When the problem
		// is the end of the input (an unclosed quote or bracket), the start
		// of the unclosed block, which yaml.v3 gives, is the better place.
		// Input only yaml.v3 rejects is rejected too: where the two parsers
		// disagree, no line numbers can be trusted, and a gate should not
		// guess.
		line, text, _ := yamlErrorLine(errV3.Error(), c)
		if _, err := sigsyaml.YAMLToJSON(c.data); err != nil {
			if l2, t2, atEnd := yamlErrorLine(err.Error(), c); !atEnd {
				line, text = l2, t2
			}
		}
		p.fail(line, "invalid YAML: %s", text)
		return
	}
	if len(doc.Content) == 0 {
		p.fail(c.line, "invalid YAML: no document found")
		return
	}
	root := doc.Content[0]
	rootLine := lines.abs(root.Line)
	if !p.checkTree(root, lines) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.fail(rootLine, "document is %s, not a mapping; a Kubernetes object is a mapping with apiVersion and kind%s",
			describeNode(root), listHint(root.Kind == yaml.SequenceNode))
		return
	}
	js, err := sigsyaml.YAMLToJSON(c.data)
	if err != nil {
		line, text, _ := yamlErrorLine(err.Error(), c)
		p.fail(line, "invalid YAML: %s", text)
		return
	}
	jd := json.NewDecoder(bytes.NewReader(js))
	jd.UseNumber()
	var obj map[string]any
	if err := jd.Decode(&obj); err != nil || obj == nil {
		// yaml.v3 saw a mapping, so the YAML 1.1 decoder disagreeing is a
		// corner of the two specifications; report it rather than guess.
		p.fail(rootLine, "document is not a mapping when read as YAML 1.1, as kubectl reads it")
		return
	}
	if tooDeep(obj, p.opts.MaxDepth) {
		// Only aliases can make the value deeper than the checked tree.
		p.fail(rootLine, "nesting is deeper than %d levels once YAML aliases are expanded", p.opts.MaxDepth)
		return
	}
	p.addObject(obj, root, lines, rootLine, index, "")
}

// checkTree rejects nesting deeper than MaxDepth, before any recursive
// decoder walks it, and duplicate mapping keys, which kubectl resolves by
// silently keeping the last value: a check could then pass on a field the
// reader of the file never saw. It reports whether the tree is acceptable.
func (p *parser) checkTree(root *yaml.Node, lines lineMap) bool {
	ok := true
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		switch n.Kind {
		case yaml.MappingNode, yaml.SequenceNode:
		default:
			return true
		}
		if depth++; depth > p.opts.MaxDepth {
			p.fail(lines.abs(n.Line), "nesting is deeper than %d levels", p.opts.MaxDepth)
			ok = false
			return false
		}
		var seen map[string]int
		if n.Kind == yaml.MappingNode {
			seen = make(map[string]int, len(n.Content)/2)
		}
		for i, c := range n.Content {
			if seen != nil && i%2 == 0 && c.Kind == yaml.ScalarNode && !(c.Value == "<<" && c.Style == 0) {
				key := yamlKey(c)
				if first, dup := seen[key]; dup {
					p.fail(lines.abs(c.Line), "duplicate key %q (first at line %d): kubectl keeps only the last value; remove one", key, first)
					ok = false
				} else {
					seen[key] = lines.abs(c.Line)
				}
			}
			if !walk(c, depth) {
				return false
			}
		}
		return true
	}
	walk(root, 0)
	return ok
}

// tooDeep reports whether v nests maps and lists deeper than max. It stops
// descending at max, so its cost is bounded whatever v holds.
func tooDeep(v any, maxDepth int) bool {
	var depth func(v any, d int) bool
	depth = func(v any, d int) bool {
		switch t := v.(type) {
		case map[string]any:
			if d++; d > maxDepth {
				return true
			}
			for _, e := range t {
				if depth(e, d) {
					return true
				}
			}
		case []any:
			if d++; d > maxDepth {
				return true
			}
			for _, e := range t {
				if depth(e, d) {
					return true
				}
			}
		}
		return false
	}
	return depth(v, 0)
}

// yamlErrorLine finds the file line of a yaml.v2 or yaml.v3 error message
// ("yaml: line N: problem") and returns it with the problem text. The
// libraries number lines inconsistently: scanner errors give the 1-based
// line, parser errors the 0-based one, and line 0 is left out. The result
// is kept within the document's lines; atEnd reports that the message
// placed it past the document's last line, at the end of the input.
func yamlErrorLine(msg string, c chunk) (line int, text string, atEnd bool) {
	msg = strings.TrimPrefix(msg, "yaml: ")
	line = c.line
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		num, text, found := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); found && err == nil {
			msg = text
			if isParserProblem(text) {
				n++
			}
			line = newLineMap(c.data, c.line).abs(n)
		}
	} else if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		// The message has no line; the first use of the alias is the place.
		name = strings.TrimSuffix(name, "' referenced")
		if i := bytes.Index(c.data, []byte("*"+name)); i >= 0 {
			line = c.line + bytes.Count(c.data[:i], []byte("\n"))
		}
	} else if rest, ok := strings.CutPrefix(msg, "unmarshal errors:\n  line "); ok {
		num, text, found := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); found && err == nil {
			msg = text
			line = newLineMap(c.data, c.line).abs(n)
		}
	}
	last := c.line + bytes.Count(bytes.TrimRight(c.data, " \t\r\n"), []byte("\n"))
	return min(max(line, c.line), last), msg, line > last
}

// isParserProblem reports whether a YAML error comes from the libyaml
// parser, whose line numbers are 0-based, rather than from the scanner. The
// list is the parser's problems in yaml.v2 and yaml.v3; the malformed-YAML
// tests pin the lines reported for both kinds.
func isParserProblem(text string) bool {
	switch text {
	case "did not find expected ',' or ']'",
		"did not find expected ',' or '}'",
		"did not find expected '-' indicator",
		"did not find expected <document start>",
		"did not find expected <stream-start>",
		"did not find expected key",
		"did not find expected node content",
		"found duplicate %TAG directive",
		"found duplicate %YAML directive",
		"found incompatible YAML document",
		"found undefined tag handle":
		return true
	}
	return false
}

// describeNode names what a non-mapping document is, for error messages.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a scalar"
	}
	return "not a mapping"
}

func listHint(isList bool) string {
	if isList {
		return `; to hold several objects use "---" separators or a kind: List object with items`
	}
	return ""
}

// addObject validates a decoded object and appends it, or its items when it
// is a List, to the documents. node is the object's node tree (nil when
// unknown), lines the map from its lines to the file's, and where the position of
// a List item ("items[2]: ") to prefix messages with.
func (p *parser) addObject(obj map[string]any, node *yaml.Node, lines lineMap, line, index int, where string) {
	kindV, hasKind := obj["kind"]
	apiV, hasAPI := obj["apiVersion"]
	kind, kindIsString := kindV.(string)
	api, apiIsString := apiV.(string)
	noKind := !hasKind || kindV == nil || kindV == ""
	noAPI := !hasAPI || apiV == nil || apiV == ""
	switch {
	case noKind && noAPI:
		p.fail(line, `%smissing "apiVersion" and "kind": this is not a Kubernetes object`, where)
		return
	case noKind:
		p.fail(line, `%smissing "kind": this is not a Kubernetes object (apiVersion is %s)`, where, quoteValue(apiV))
		return
	case noAPI:
		p.fail(line, `%smissing "apiVersion": this is not a Kubernetes object (kind is %s)`, where, quoteValue(kindV))
		return
	case !kindIsString:
		p.fail(line, `%s"kind" must be a string, not %s`, where, describeValue(kindV))
		return
	case !apiIsString:
		p.fail(line, `%s"apiVersion" must be a string, not %s`, where, describeValue(apiV))
		return
	}

	itemsV, hasItems := obj["items"]
	if kind != "List" && !(strings.HasSuffix(kind, "List") && hasItems) {
		p.docs = append(p.docs, Document{File: p.file, Line: line, Index: index, Object: obj, node: node, lines: lines})
		return
	}
	var itemsNode *yaml.Node
	itemsLine := line
	if node != nil {
		if k, v := lookupKey(resolveAlias(node), "items"); k != nil {
			itemsNode, itemsLine = resolveAlias(v), lines.abs(k.Line)
		}
	}
	if itemsV == nil {
		return // an empty List, as kubectl prints when nothing matches
	}
	items, ok := itemsV.([]any)
	if !ok {
		p.fail(itemsLine, `%s"items" of a %s must be a list, not %s`, where, kind, describeValue(itemsV))
		return
	}
	for i, it := range items {
		var itemNode *yaml.Node
		itemLine := itemsLine
		if itemsNode != nil && itemsNode.Kind == yaml.SequenceNode && i < len(itemsNode.Content) {
			itemNode = resolveAlias(itemsNode.Content[i])
			itemLine = lines.abs(itemsNode.Content[i].Line)
		}
		itemWhere := fmt.Sprintf("%sitems[%d]: ", where, i)
		item, ok := it.(map[string]any)
		if !ok {
			p.fail(itemLine, "%sa %s item must be an object, not %s", itemWhere, kind, describeValue(it))
			continue
		}
		// The API server leaves kind and apiVersion out of the items of a
		// typed list such as a DeploymentList; kubectl fills them in from the
		// list, and so do we. A plain List names no item kind to infer.
		if _, k := item["kind"]; !k && kind != "List" {
			if _, a := item["apiVersion"]; !a {
				item["kind"] = strings.TrimSuffix(kind, "List")
				item["apiVersion"] = api
			}
		}
		p.addObject(item, itemNode, lines, itemLine, index, itemWhere)
		if p.stopped {
			return
		}
	}
}

// quoteValue shows a decoded value in a message: strings quoted, others
// by their type.
func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return describeValue(v)
}

// describeValue names the JSON type of a decoded value, for error messages.
func describeValue(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// lineMap turns a line as the YAML parsers number them within one document
// into a line of the file. YAML also ends a line at a lone carriage return
// and at NEL, LS and PS (U+0085, U+2028, U+2029); editors, diffs and grep
// end lines at "\n" only, and a problem must be reported on the line where
// the user will find it.
type lineMap struct {
	base int   // file line of the document's first line
	file []int // file line of YAML line i+1; nil when both count alike
}

// newLineMap maps the lines of one document's text, which starts on file
// line base.
func newLineMap(data []byte, base int) lineMap {
	m := lineMap{base: base}
	odd := false
	for i := 0; i < len(data) && !odd; i++ {
		switch {
		case data[i] == '\r' && (i+1 == len(data) || data[i+1] != '\n'):
			odd = true
		case data[i] == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
			odd = true
		case data[i] == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
			odd = true
		}
	}
	if !odd {
		return m
	}
	line := base
	m.file = append(m.file, line)
	for i := 0; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			line++
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			continue // counted at the "\n"
		case data[i] == '\r':
		case data[i] == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
			i++
		case data[i] == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
			i += 2
		default:
			continue
		}
		m.file = append(m.file, line)
	}
	return m
}

// abs returns the file line of YAML line n of the document. A line past
// the end (a parser error at the end of the input) is the document's last.
func (m lineMap) abs(n int) int {
	if m.file == nil {
		return m.base + n - 1
	}
	if n < 1 {
		return m.base
	}
	return m.file[min(n, len(m.file))-1]
}

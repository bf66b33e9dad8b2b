package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// readJSON decodes a stream of JSON values, as kubectl does for input that
// starts with "{". JSON is read with encoding/json rather than as YAML
// because YAML parsers reject valid JSON (the "\/" escape, for one) and
// would change number spellings. Values are read token by token so that
// nesting is bounded before anything recurses, and so that the same pass
// records each field's line in a yaml.Node tree for LineOf.
func (p *parser) readJSON(data []byte) {
	jr := &jsonReader{p: p, data: data, dec: json.NewDecoder(bytes.NewReader(data)), line: 1}
	jr.dec.UseNumber()
	for index := 0; !p.stopped; index++ {
		tok, err := jr.dec.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			jr.syntaxError(err)
			return
		}
		line := jr.tokenLine()
		errsBefore := len(p.errs)
		v, node, ok := jr.value(tok, line, 1)
		if !ok {
			return // a JSON decoder cannot resynchronise after bad input
		}
		if len(p.errs) > errsBefore {
			continue // duplicate keys, already reported
		}
		obj, ok := v.(map[string]any)
		if !ok {
			p.fail(line, "JSON value is %s, not an object; a Kubernetes object is an object with apiVersion and kind%s",
				describeValue(v), listHint(node.Kind == yaml.SequenceNode))
			continue
		}
		p.addObject(obj, node, lineMap{base: 1}, line, index, "")
	}
}

// jsonReader decodes one JSON stream, tracking lines.
type jsonReader struct {
	p    *parser
	data []byte
	dec  *json.Decoder
	// off and line cache the last offset turned into a line: offsets only
	// grow, so counting newlines from there keeps the whole pass linear.
	off, line int
}

// lineAt returns the 1-based line of byte offset off.
func (jr *jsonReader) lineAt(off int) int {
	off = min(max(off, 0), len(jr.data))
	if off < jr.off {
		jr.off, jr.line = 0, 1
	}
	jr.line += bytes.Count(jr.data[jr.off:off], []byte("\n"))
	jr.off = off
	return jr.line
}

// tokenLine returns the line of the token just read. JSON tokens never span
// lines, so the line of its last byte is its line.
func (jr *jsonReader) tokenLine() int {
	return jr.lineAt(int(jr.dec.InputOffset()) - 1)
}

// syntaxError reports a decoder error at the line where it happened.
func (jr *jsonReader) syntaxError(err error) {
	msg := err.Error()
	var line int
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		line = jr.lineAt(int(se.Offset) - 1)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Inside a value, the decoder reports a truncated input as EOF.
		line = jr.lineAt(len(bytes.TrimRight(jr.data, " \t\r\n")) - 1)
		msg = "unexpected end of input: an object or list is not closed"
	default:
		line = jr.lineAt(len(jr.data))
	}
	jr.p.fail(line, `invalid JSON (read as JSON because the file starts with "{"): %s`, msg)
}

// value decodes the value that starts with tok, found on line, at nesting
// depth. It returns the value and its node tree, or false after reporting an
// error that ends the stream.
func (jr *jsonReader) value(tok json.Token, line, depth int) (any, *yaml.Node, bool) {
	delim, ok := tok.(json.Delim)
	if !ok {
		s, _ := tok.(string)
		return tok, &yaml.Node{Kind: yaml.ScalarNode, Value: s, Line: line}, true
	}
	if depth > jr.p.opts.MaxDepth {
		jr.p.fail(line, "nesting is deeper than %d levels", jr.p.opts.MaxDepth)
		return nil, nil, false
	}
	switch delim {
	case '{':
		obj := map[string]any{}
		node := &yaml.Node{Kind: yaml.MappingNode, Line: line}
		seen := map[string]int{}
		for jr.dec.More() {
			ktok, err := jr.dec.Token()
			if err != nil {
				jr.syntaxError(err)
				return nil, nil, false
			}
			key, _ := ktok.(string) // the decoder only returns strings as keys
			keyLine := jr.tokenLine()
			vtok, err := jr.dec.Token()
			if err != nil {
				jr.syntaxError(err)
				return nil, nil, false
			}
			v, vnode, ok := jr.value(vtok, jr.tokenLine(), depth+1)
			if !ok {
				return nil, nil, false
			}
			if first, dup := seen[key]; dup {
				jr.p.fail(keyLine, "duplicate key %q (first at line %d): kubectl keeps only the last value; remove one", key, first)
			} else {
				seen[key] = keyLine
			}
			obj[key] = v
			node.Content = append(node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key, Style: yaml.DoubleQuotedStyle, Line: keyLine}, vnode)
		}
		return obj, node, jr.closing()
	case '[':
		list := []any{}
		node := &yaml.Node{Kind: yaml.SequenceNode, Line: line}
		for jr.dec.More() {
			tok, err := jr.dec.Token()
			if err != nil {
				jr.syntaxError(err)
				return nil, nil, false
			}
			v, vnode, ok := jr.value(tok, jr.tokenLine(), depth+1)
			if !ok {
				return nil, nil, false
			}
			list = append(list, v)
			node.Content = append(node.Content, vnode)
		}
		return list, node, jr.closing()
	}
	// A closing delimiter where a value belongs; the decoder reports these
	// as syntax errors, so this is only a safeguard.
	jr.p.fail(line, "invalid JSON: unexpected %q", fmt.Sprint(delim))
	return nil, nil, false
}

// closing reads the "}" or "]" that ends an object or list.
func (jr *jsonReader) closing() bool {
	if _, err := jr.dec.Token(); err != nil {
		jr.syntaxError(err)
		return false
	}
	return true
}

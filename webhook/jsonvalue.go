package webhook

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth is encoding/json's nesting limit, kept so both decoders
// accept the same documents.
const maxJSONDepth = 10000

// decodeJSONObject decodes one JSON object (or null) into the values the
// engine judges, as encoding/json with UseNumber does: map[string]any,
// []any, string, bool, json.Number and nil, invalid UTF-8 and lone
// surrogates replaced by U+FFFD, the last of duplicate keys kept. It is
// the hot path of every admission request: it reads the bytes once and
// allocates only the values it returns.
func decodeJSONObject(data []byte) (map[string]any, error) {
	return decodeJSON(data, false)
}

// decodeJSON is decodeJSONObject, leaving out the managedFields of an
// AdmissionReview's objects when skipManagedFields is set.
func decodeJSON(data []byte, skipManagedFields bool) (map[string]any, error) {
	d := jsonDecoder{data: data, skipManagedFields: skipManagedFields}
	d.space()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.space()
	if d.pos != len(d.data) {
		return nil, d.errorf("unexpected %q after the value", d.data[d.pos])
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	default:
		return nil, fmt.Errorf("a JSON %s where an object belongs", jsonKindOf(v))
	}
}

type jsonDecoder struct {
	data  []byte
	pos   int
	depth int
	// skipManagedFields leaves out request.object.metadata.managedFields
	// and the oldObject's (checked, not built); keys holds the keys on the
	// path to the current object, for the first levels.
	skipManagedFields bool
	keys              [5]string
}

// skipped reports whether the value of key k, in the object at the
// current depth, is one the decoder leaves out.
func (d *jsonDecoder) skipped(k string) bool {
	return d.skipManagedFields && d.depth == 4 && k == "managedFields" && d.keys[3] == "metadata" &&
		(d.keys[2] == "object" || d.keys[2] == "oldObject") && d.keys[1] == "request"
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.pos, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\r', '\n':
			d.pos++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value() (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of JSON input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		return d.string()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		return nil, d.errorf("invalid character %q looking for the beginning of a value", c)
	}
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return d.errorf("invalid literal, want %s", word)
	}
	d.pos += len(word)
	return nil
}

func (d *jsonDecoder) nest() error {
	d.depth++
	if d.depth > maxJSONDepth {
		return d.errorf("nested deeper than %d", maxJSONDepth)
	}
	d.pos++
	d.space()
	return nil
}

func (d *jsonDecoder) object() (any, error) {
	if err := d.nest(); err != nil {
		return nil, err
	}
	m := map[string]any{}
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return m, nil
	}
	for {
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.errorf("want a string key")
		}
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.errorf("want ':' after an object key")
		}
		d.pos++
		d.space()
		if d.depth < len(d.keys) {
			d.keys[d.depth] = k
		}
		if d.skipped(k) {
			if err := d.skip(); err != nil {
				return nil, err
			}
		} else {
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		d.space()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of JSON input")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case '}':
			d.pos++
			d.depth--
			return m, nil
		default:
			return nil, d.errorf("want ',' or '}' in an object")
		}
	}
}

func (d *jsonDecoder) array() (any, error) {
	if err := d.nest(); err != nil {
		return nil, err
	}
	a := []any{}
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return a, nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.space()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of JSON input")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case ']':
			d.pos++
			d.depth--
			return a, nil
		default:
			return nil, d.errorf("want ',' or ']' in an array")
		}
	}
}

// skip checks one value as value would and moves past it, building
// nothing.
func (d *jsonDecoder) skip() error {
	if d.pos >= len(d.data) {
		return d.errorf("unexpected end of JSON input")
	}
	switch c := d.data[d.pos]; {
	case c == '{' || c == '[':
		return d.skipNested(c)
	case c == '"':
		return d.skipString()
	case c == '-' || c >= '0' && c <= '9':
		_, err := d.number()
		return err
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	default:
		return d.errorf("invalid character %q looking for the beginning of a value", c)
	}
}

// skipNested skips an object (open '{') or an array (open '['), checking
// its grammar.
func (d *jsonDecoder) skipNested(open byte) error {
	if err := d.nest(); err != nil {
		return err
	}
	closing, what := byte(']'), "an array"
	if open == '{' {
		closing, what = '}', "an object"
	}
	if d.pos < len(d.data) && d.data[d.pos] == closing {
		d.pos++
		d.depth--
		return nil
	}
	for {
		if open == '{' {
			if d.pos >= len(d.data) || d.data[d.pos] != '"' {
				return d.errorf("want a string key")
			}
			if err := d.skipString(); err != nil {
				return err
			}
			d.space()
			if d.pos >= len(d.data) || d.data[d.pos] != ':' {
				return d.errorf("want ':' after an object key")
			}
			d.pos++
			d.space()
		}
		if err := d.skip(); err != nil {
			return err
		}
		d.space()
		if d.pos >= len(d.data) {
			return d.errorf("unexpected end of JSON input")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.space()
		case closing:
			d.pos++
			d.depth--
			return nil
		default:
			return d.errorf("want ',' or '%c' in %s", closing, what)
		}
	}
}

// skipString checks a string as string would (escapes, control
// characters) and moves past it.
func (d *jsonDecoder) skipString() error {
	d.pos++ // the opening quote
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			d.pos++
			return nil
		case c == '\\':
			if d.pos+1 >= len(d.data) {
				return d.errorf("unexpected end of JSON input in a string")
			}
			switch d.data[d.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.pos += 2
			case 'u':
				if _, ok := d.hex4(d.pos + 2); !ok {
					d.pos += 2
					return d.errorf("invalid \\u escape")
				}
				d.pos += 6
			default:
				e := d.data[d.pos+1]
				d.pos += 2
				return d.errorf("invalid escape '\\%c' in a string", e)
			}
		case c < 0x20:
			return d.errorf("control character %q in a string", c)
		default:
			d.pos++
		}
	}
	return d.errorf("unexpected end of JSON input in a string")
}

// number checks the JSON number grammar and keeps the text.
func (d *jsonDecoder) number() (any, error) {
	start := d.pos
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case digits() == 0:
		return nil, d.errorf("invalid number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return nil, d.errorf("invalid number: no digits after '.'")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return nil, d.errorf("invalid number: no digits in the exponent")
		}
	}
	return json.Number(d.data[start:d.pos]), nil
}

// string decodes a string; the plain ASCII case, by far the commonest,
// is one scan and one copy.
func (d *jsonDecoder) string() (string, error) {
	d.pos++ // the opening quote
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		case c == '\\' || c >= utf8.RuneSelf:
			return d.slowString(start)
		case c < 0x20:
			return "", d.errorf("control character %q in a string", c)
		}
		d.pos++
	}
	return "", d.errorf("unexpected end of JSON input in a string")
}

// slowString decodes a string with escapes or non-ASCII bytes, from its
// first byte at start, as encoding/json unquotes.
func (d *jsonDecoder) slowString(start int) (string, error) {
	d.pos = start
	buf := make([]byte, 0, d.encodedLen(start))
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf), nil
		case c == '\\':
			if d.pos+1 >= len(d.data) {
				return "", d.errorf("unexpected end of JSON input in a string")
			}
			e := d.data[d.pos+1]
			d.pos += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := d.hex4(d.pos)
				if !ok {
					return "", d.errorf("invalid \\u escape")
				}
				d.pos += 4
				if utf16.IsSurrogate(r) {
					if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
						if r2, ok := d.hex4(d.pos + 2); ok {
							if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
								buf = utf8.AppendRune(buf, dec)
								d.pos += 6
								continue
							}
						}
					}
					r = unicode.ReplacementChar
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return "", d.errorf("invalid escape '\\%c' in a string", e)
			}
		case c < 0x20:
			return "", d.errorf("control character %q in a string", c)
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				buf = utf8.AppendRune(buf, unicode.ReplacementChar)
			} else {
				buf = append(buf, d.data[d.pos:d.pos+size]...)
			}
			d.pos += size
		}
	}
	return "", d.errorf("unexpected end of JSON input in a string")
}

// encodedLen is the length of the string whose first byte is at start, up
// to its closing quote or the end of the data: what the decoded string
// takes, but for \u escapes of invalid bytes, which the buffer grows for.
// Sizing by the rest of the document instead made each escaped string of
// a large object allocate a fraction of the whole object.
func (d *jsonDecoder) encodedLen(start int) int {
	i := start
	for i < len(d.data) {
		switch d.data[i] {
		case '"':
			return i - start
		case '\\':
			i += 2
		default:
			i++
		}
	}
	return len(d.data) - start
}

func (d *jsonDecoder) hex4(at int) (rune, bool) {
	if at+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

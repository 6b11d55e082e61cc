package api

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// invalidText finds the first JSON string in params (a member name or a
// value) that is not valid Unicode text: raw bytes that are not UTF-8, or a
// \u escape of a lone surrogate. encoding/json would quietly turn either
// into U+FFFD, so the service would never see that the client's text was
// damaged; the API refuses it instead, naming the field ("note",
// "server.host", "servers[0].host"). params must be syntactically valid
// JSON; on anything else invalidText reports nothing and leaves the error
// to the decoder.
func invalidText(params []byte) (field string, found bool) {
	s := textScanner{b: params}
	s.value("")
	return s.field, s.found
}

type textScanner struct {
	b     []byte
	i     int
	field string
	found bool
	bad   bool // malformed JSON: stop, report nothing
}

func (s *textScanner) stop() bool { return s.found || s.bad }

func (s *textScanner) skipSpace() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads one JSON value at path.
func (s *textScanner) value(path string) {
	s.skipSpace()
	if s.i >= len(s.b) {
		s.bad = true
		return
	}
	switch s.b[s.i] {
	case '{':
		s.object(path)
	case '[':
		s.array(path)
	case '"':
		if _, ok := s.str(); !ok && !s.bad {
			s.field, s.found = path, true
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

func (s *textScanner) object(path string) {
	s.i++ // {
	for first := true; ; first = false {
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == '}' && first {
			s.i++
			return
		}
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			s.bad = true
			return
		}
		name, ok := s.str()
		if s.bad {
			return
		}
		child := name
		if path != "" {
			child = path + "." + name
		}
		if !ok {
			s.field, s.found = child, true
			return
		}
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			s.bad = true
			return
		}
		s.i++
		if s.value(child); s.stop() {
			return
		}
		if !s.separator('}') {
			return
		}
	}
}

func (s *textScanner) array(path string) {
	s.i++ // [
	for n := 0; ; n++ {
		s.skipSpace()
		if s.i < len(s.b) && s.b[s.i] == ']' && n == 0 {
			s.i++
			return
		}
		if s.value(path + "[" + strconv.Itoa(n) + "]"); s.stop() {
			return
		}
		if !s.separator(']') {
			return
		}
	}
}

// str reads the string literal at s.i and returns its text (escapes of
// quotes and backslashes resolved, enough to name a field) and whether it
// is valid Unicode.
func (s *textScanner) str() (text string, ok bool) {
	s.i++ // opening quote
	ok = true
	var out []byte
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(out), ok
		case c == '\\':
			if s.i+1 >= len(s.b) {
				s.bad = true
				return "", false
			}
			if s.b[s.i+1] != 'u' {
				out = append(out, s.b[s.i+1])
				s.i += 2
				continue
			}
			r, n, lone := s.escape(s.i)
			if n == 0 {
				return "", false // s.bad set
			}
			if lone {
				ok = false
			}
			out = utf8.AppendRune(out, r)
			s.i += n
		case c < utf8.RuneSelf:
			out = append(out, c)
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				ok = false
			}
			out = utf8.AppendRune(out, r)
			s.i += size
		}
	}
	s.bad = true
	return "", false
}

// escape decodes the \uXXXX (or surrogate pair \uXXXX\uXXXX) at i into
// r, n bytes long; lone is true for a surrogate without its pair, and n is
// 0 (with s.bad) for a malformed escape.
func (s *textScanner) escape(i int) (r rune, n int, lone bool) {
	r1, ok := hex4(s.b, i+2)
	if !ok {
		s.bad = true
		return 0, 0, false
	}
	switch {
	case !utf16.IsSurrogate(r1):
		return r1, 6, false
	case r1 >= 0xDC00: // a low surrogate first
		return utf8.RuneError, 6, true
	}
	if i+7 < len(s.b) && s.b[i+6] == '\\' && s.b[i+7] == 'u' {
		if r2, ok := hex4(s.b, i+8); ok {
			if dec := utf16.DecodeRune(r1, r2); dec != utf8.RuneError {
				return dec, 12, false
			}
		}
	}
	return utf8.RuneError, 6, true
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

// separator reads what follows a member or an element: a comma (more to
// come: true) or the container's closer (false); anything else is bad.
func (s *textScanner) separator(closer byte) bool {
	s.skipSpace()
	if s.i >= len(s.b) {
		s.bad = true
		return false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true
	case closer:
		s.i++
		return false
	}
	s.bad = true
	return false
}

package event

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the event as one JSON object and a newline.
func (e *Event) AppendJSON(b []byte) []byte {
	b = append(b, `{"event":`...)
	b = appendJSONString(b, string(e.Kind))
	b = append(b, `,"mono_ns":`...)
	b = strconv.AppendInt(b, e.Mono, 10)
	if e.Level != "" {
		b = append(b, `,"level":`...)
		b = appendJSONString(b, e.Level)
	}
	for _, f := range e.fields() {
		b = append(b, ',')
		b = appendJSONString(b, f.key)
		b = append(b, ':')
		switch v := f.val.(type) {
		case string:
			b = appendJSONString(b, v)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case bool:
			b = strconv.AppendBool(b, v)
		default:
			j, err := json.Marshal(v)
			if err != nil {
				j = []byte("null")
			}
			b = append(b, j...)
		}
	}
	return append(b, '}', '\n')
}

// AppendText appends the event as one human-readable line, dmesg style:
//
//	[    4.000100] vminit: sigterm grace=10s
func (e *Event) AppendText(b []byte) []byte {
	b = appendMono(b, e.Mono)
	b = append(b, " vminit: "...)
	if e.Kind == Log {
		if e.Level != "" && e.Level != "INFO" {
			b = append(b, e.Level...)
			b = append(b, ": "...)
		}
	} else {
		b = append(b, e.Kind...)
		b = append(b, ' ')
	}
	b = append(b, e.String()...)
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return append(b, '\n')
}

// appendMono appends "[SSSSS.UUUUUU]", the kernel log's timestamp format.
func appendMono(b []byte, ns int64) []byte {
	sec := strconv.FormatInt(ns/1e9, 10)
	usec := strconv.FormatInt(ns%1e9/1e3, 10)
	b = append(b, '[')
	for i := len(sec); i < 5; i++ {
		b = append(b, ' ')
	}
	b = append(b, sec...)
	b = append(b, '.')
	for i := len(usec); i < 6; i++ {
		b = append(b, '0')
	}
	b = append(b, usec...)
	return append(b, ']')
}

const hex = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does, so every line is valid JSON whatever a process
// named itself.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

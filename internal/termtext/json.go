package termtext

import (
	"bytes"
	"io"
	"unicode/utf8"
)

// JSON returns b, JSON as encoding/json writes it, with DEL and the C1
// controls (U+0080 to U+009F), which encoding/json leaves as they are,
// written as \u escapes. Raw, they can only stand inside a string, where
// the escape is the same value: the JSON decodes as before, and a
// terminal shown it receives no control. b itself when it holds none.
func JSON(b []byte) []byte {
	i := bytes.IndexFunc(b, jsonUnsafe)
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	out = append(out, b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if jsonUnsafe(r) {
			out = append(out, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

func jsonUnsafe(r rune) bool { return r == 0x7f || r >= 0x80 && r <= 0x9f }

// JSONWriter writes to w what is written to it as JSON does. Each Write
// is taken by itself: its callers write whole values (an encoder's
// Encode, a log record).
type JSONWriter struct{ w io.Writer }

// NewJSONWriter returns a JSONWriter to w.
func NewJSONWriter(w io.Writer) *JSONWriter { return &JSONWriter{w: w} }

// Write writes p, its controls escaped, and reports len(p) when all of it
// was written.
func (j *JSONWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(JSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
